package adminclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/warden-a2a/warden/internal/api"
)

// SearchAudit runs an audit search (GET /v1/audit/search) with these query parameters.
func (c *Client) SearchAudit(ctx context.Context, q url.Values) (api.AuditSearchResponse, error) {
	var out api.AuditSearchResponse
	err := c.do(ctx, http.MethodGet, api.PathAuditSearch+"?"+q.Encode(), nil, &out)
	return out, err
}

// CreateAuditor asks for an auditor credential for the key in the CSR.
func (c *Client) CreateAuditor(ctx context.Context, req api.AuditorRequest) (api.AuditorResponse, error) {
	var out api.AuditorResponse
	err := c.do(ctx, http.MethodPost, api.PathAdminAuditors, req, &out)
	return out, err
}
