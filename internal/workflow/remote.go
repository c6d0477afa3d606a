package workflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/warden-a2a/warden/internal/api"
)

// RemoteStore is the control plane's workflow state, through its API
// (POST /v1/workflow/begin and /v1/workflow/finish), authenticated by the gate's SVID.
// The control plane records each step under the caller's SPIFFE ID as callee.
type RemoteStore struct {
	URL    string
	Client *http.Client
}

var _ Store = (*RemoteStore)(nil)

// Begin implements Store.
func (r *RemoteStore) Begin(ctx context.Context, s Step) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	var out api.WorkflowVerdict
	if err := api.Do(ctx, r.Client, http.MethodPost, strings.TrimRight(r.URL, "/")+api.PathWorkflowBegin, s, &out); err != nil {
		return "", remoteErr(err)
	}
	switch out.Verdict {
	case "", OutOfOrder, Duplicate:
		return out.Verdict, nil
	}
	return "", fmt.Errorf("%w: unknown verdict %q", ErrUnavailable, out.Verdict)
}

// Finish implements Store.
func (r *RemoteStore) Finish(ctx context.Context, s Step, done bool) error {
	u := strings.TrimRight(r.URL, "/") + api.PathWorkflowFinish + "?done=false"
	if done {
		u = strings.TrimRight(r.URL, "/") + api.PathWorkflowFinish + "?done=true"
	}
	if err := api.Do(ctx, r.Client, http.MethodPost, u, s, nil); err != nil {
		return remoteErr(err)
	}
	return nil
}

// remoteErr: a refusal of the request itself (4xx) is returned as it is; anything else
// (no answer, 5xx) means the state is unavailable.
func remoteErr(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status/100 == 4 {
		return fmt.Errorf("workflow: %w", err)
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}
