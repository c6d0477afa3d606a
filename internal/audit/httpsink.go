package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// HTTPSink ships spooled events to the control plane: POST URL/v1/audit/events with
// {"events": [event, ...]} over the gate's mTLS client. The control plane appends the
// batch durably or refuses it whole; a refusal leaves the batch in the spool for a retry.
type HTTPSink struct {
	URL    string       // control plane base URL
	Client *http.Client // mTLS client presenting the gate's SVID
}

var _ Sink = HTTPSink{}

// Ship implements Sink.
func (h HTTPSink) Ship(ctx context.Context, batch [][]byte) error {
	raw := make([]json.RawMessage, len(batch))
	for i, b := range batch {
		raw[i] = b
	}
	body, err := json.Marshal(struct {
		Events []json.RawMessage `json:"events"`
	}{raw})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(h.URL, "/")+"/v1/audit/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := h.Client.Do(req)
	if err != nil {
		return fmt.Errorf("audit: ship: %w", err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("audit: ship: control plane answered %d: %s", res.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}
