package approval

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
)

// Req is what a gate files: the refused call's requester, what it asked for, the intent
// hash (IntentHash of the request's Binding), how many distinct approvals the policy needs and the
// policy's id. It is the wire body of POST /v1/approvals.
type Req = api.ApprovalRequest

// Client calls the approvals API of the control plane with the caller's X509-SVID (a
// gate's, or an agent's for its own requests). A gate uses it behind its own one-method
// interfaces, e.g. interface{ Request(context.Context, approval.Req) (string, error) }.
// Refusals come back as *api.Error carrying the reason code.
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// NewClient returns a Client that authenticates with the (rotating) svid and accepts
// only the control plane's own identity spiffe://TD/warden/server.
func NewClient(baseURL string, svid x509svid.Source, bundle x509bundle.Source, td spiffeid.TrustDomain) *Client {
	server := spiffeid.RequireFromPath(td, "/warden/server")
	return &Client{
		BaseURL: strings.TrimRight(baseURL, "/"),
		HTTP: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: tlsconfig.MTLSClientConfig(svid, bundle, tlsconfig.AuthorizeID(server)),
		}},
	}
}

// Request files an approval request and returns its id.
func (c *Client) Request(ctx context.Context, r Req) (string, error) {
	var out api.ApprovalFiled
	if err := api.Do(ctx, c.HTTP, http.MethodPost, c.BaseURL+api.PathApprovals, r, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// Check returns the state of approval id for the intent hash of the retried call. An
// id filed for another intent is refused with api.ReasonApprovalIntentMismatch; an
// unknown id with api.ReasonApprovalNotFound. Status.Approvers is what the gate puts
// into policy.CallContext.Approvers, and only when Status.Status is StateApproved.
func (c *Client) Check(ctx context.Context, id, intentHash string) (Status, error) {
	var out Status
	err := api.Do(ctx, c.HTTP, http.MethodPost, c.BaseURL+api.PathApprovals+"/"+url.PathEscape(id)+"/check", api.ApprovalCheck{IntentHash: intentHash}, &out)
	return out, err
}

// Consume checks approval id like Check and uses it up (single use): the gate calls it
// when it forwards the call the approval allowed. Of concurrent consumers exactly one
// succeeds (Status.Status StateUsed); the others get api.ReasonApprovalUsed. A request
// that is not approved is refused with api.ReasonApprovalPending, ReasonApprovalDenied
// or ReasonApprovalExpired.
func (c *Client) Consume(ctx context.Context, id, intentHash string) (Status, error) {
	var out Status
	err := api.Do(ctx, c.HTTP, http.MethodPost, c.BaseURL+api.PathApprovals+"/"+url.PathEscape(id)+"/check", api.ApprovalCheck{IntentHash: intentHash, Consume: true}, &out)
	return out, err
}

// Decide posts a signed decision and returns the state after it. The endpoint needs no
// client certificate: the signature is the authentication.
func (c *Client) Decide(ctx context.Context, d api.ApprovalDecision) (Status, error) {
	var out Status
	err := api.Do(ctx, c.HTTP, http.MethodPost, c.BaseURL+api.PathApprovals+"/"+url.PathEscape(d.Statement.ApprovalID)+"/decisions", d, &out)
	return out, err
}
