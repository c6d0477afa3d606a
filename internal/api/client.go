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
	if req.URL.Scheme != "https" {
		return fmt.Errorf("warden api: %s: the control plane serves only https:// (check --server / server:)", url)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("warden api: %s %s: %w", method, url, explainTransport(err))
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("warden api: %w", err)
	}
	if res.StatusCode/100 != 2 {
		e := &Error{}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			// Not a Warden answer: something else listens there, or a proxy in between.
			e.Code = ReasonNotWarden
			e.Message = fmt.Sprintf("%s %s answered %d without a Warden error (%.200q): is the URL the control plane's base URL, https://host:port with no path?",
				method, url, res.StatusCode, strings.TrimSpace(string(data)))
		}
		e.Status = res.StatusCode
		return e
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// ReasonNotWarden is the code of an *Error made by the client for an answer that is not
// a Warden API error (a wrong address or path, a proxy's error page).
const ReasonNotWarden = "not_a_warden_answer"

// explainTransport adds the likely cause to transport errors an operator meets when an
// address is wrong.
func explainTransport(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%w (plain HTTP answered: this is not the control plane's TLS port)", err)
	case strings.Contains(msg, "certificate signed by unknown authority"), strings.Contains(msg, "x509svid:"):
		return fmt.Errorf("%w (the server's certificate does not chain to this trust domain's bundle: another server, or another trust domain)", err)
	case strings.Contains(msg, "remote error: tls: bad certificate"), strings.Contains(msg, "remote error: tls: certificate"):
		return fmt.Errorf("%w (the server refused our client certificate: expired, revoked or of another trust domain)", err)
	case strings.Contains(msg, "connection refused"):
		return fmt.Errorf("%w (nothing listens there: is the control plane running at this address?)", err)
	}
	return err
}
