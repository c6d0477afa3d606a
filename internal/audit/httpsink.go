package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/warden-a2a/warden/internal/api"
)

// HTTPSink ships spooled events to the control plane: POST URL/v1/audit/events with
// {"events": [event, ...]} over the gate's mTLS client. The control plane appends the
// batch durably or refuses it whole; a refusal leaves the batch in the spool for a retry.
type HTTPSink struct {
	URL    string       // control plane base URL
	Client *http.Client // mTLS client presenting the gate's SVID
}

var _ Sink = HTTPSink{}

// Ship implements Sink. A refusal by the control plane comes back as *api.Error with
// its reason code and HTTP status; a failure to reach it, as the transport's error.
func (h HTTPSink) Ship(ctx context.Context, batch [][]byte) error {
	raw := make([]json.RawMessage, len(batch))
	for i, b := range batch {
		raw[i] = b
	}
	in := struct {
		Events []json.RawMessage `json:"events"`
	}{raw}
	if err := api.Do(ctx, h.Client, http.MethodPost, strings.TrimRight(h.URL, "/")+api.PathAuditEvents, in, nil); err != nil {
		return fmt.Errorf("audit: ship: %w", err)
	}
	return nil
}
