package adminclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/warden-a2a/warden/internal/api"
)

// AddFederation adds a federation relationship; the server fetches the foreign bundle
// before it answers (docs/federation.md).
func (c *Client) AddFederation(ctx context.Context, req api.FederationRequest) (api.Federation, error) {
	var out api.Federation
	err := c.do(ctx, http.MethodPost, api.PathAdminFederation, req, &out)
	return out, err
}

// ListFederation lists the relationships with their bundles' state.
func (c *Client) ListFederation(ctx context.Context) ([]api.Federation, error) {
	var out []api.Federation
	err := c.do(ctx, http.MethodGet, api.PathAdminFederation, nil, &out)
	return out, err
}

// RemoveFederation ends the relationship with trustDomain and returns the trust-state
// version that no longer carries it.
func (c *Client) RemoveFederation(ctx context.Context, trustDomain, reason string) (int64, error) {
	var out api.TrustChangeResponse
	p := api.PathAdminFederation + "/" + url.PathEscape(trustDomain)
	if reason != "" {
		p += "?reason=" + url.QueryEscape(reason)
	}
	err := c.do(ctx, http.MethodDelete, p, nil, &out)
	return out.Version, err
}
