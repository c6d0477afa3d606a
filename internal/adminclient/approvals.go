package adminclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/warden-a2a/warden/internal/api"
)

// ListApprovals returns up to limit approval requests, newest first, with their state.
func (c *Client) ListApprovals(ctx context.Context, limit int) ([]api.ApprovalRecord, error) {
	var out []api.ApprovalRecord
	err := c.do(ctx, http.MethodGet, api.PathAdminApprovals+"?limit="+strconv.Itoa(limit), nil, &out)
	return out, err
}

// GetApproval returns one approval request with its decisions and state.
func (c *Client) GetApproval(ctx context.Context, id string) (api.ApprovalRecord, error) {
	var out api.ApprovalRecord
	err := c.do(ctx, http.MethodGet, api.PathAdminApprovals+"/"+url.PathEscape(id), nil, &out)
	return out, err
}

// DecideApproval posts an approver's signed decision and returns the state after it.
func (c *Client) DecideApproval(ctx context.Context, d api.ApprovalDecision) (api.ApprovalStatus, error) {
	var out api.ApprovalStatus
	err := c.do(ctx, http.MethodPost, api.PathApprovals+"/"+url.PathEscape(d.Statement.ApprovalID)+"/decisions", d, &out)
	return out, err
}

// AddApprover registers an approver and its public key.
func (c *Client) AddApprover(ctx context.Context, a api.Approver) (api.Approver, error) {
	var out api.Approver
	err := c.do(ctx, http.MethodPost, api.PathAdminApprovers, a, &out)
	return out, err
}

// ListApprovers lists the registered approvers.
func (c *Client) ListApprovers(ctx context.Context) ([]api.Approver, error) {
	var out []api.Approver
	err := c.do(ctx, http.MethodGet, api.PathAdminApprovers, nil, &out)
	return out, err
}

// DeleteApprover removes an approver; decisions it already signed stay recorded.
func (c *Client) DeleteApprover(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, api.PathAdminApprovers+"/"+url.PathEscape(name), nil, nil)
}
