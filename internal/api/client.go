package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxAnswer bounds what Do reads of an answer.
const maxAnswer = 4 << 20

// Do sends one JSON request (in, if not nil) and decodes a 2xx answer into out (if not
// nil). Any other status becomes an *Error carrying the server's reason code and the
// HTTP status, so callers tell refusals apart with errors.As and Error.Code. It is the
// one client of this API used by the SDK, the admin CLI and the approval client.
func Do(ctx context.Context, hc *http.Client, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("warden api: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("warden api: %w", err)
	}
	if res.StatusCode/100 != 2 {
		e := &Error{}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Code, e.Message = ReasonInternal, strings.TrimSpace(string(data))
		}
		e.Status = res.StatusCode
		return e
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}
