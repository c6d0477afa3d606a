// Package adminclient calls the control plane's admin API with the admin credential that
// `warden server` writes to DATA_DIR/admin (admin.pem, admin_key.pem, bundle.pem,
// server_url). It is what the entry, token and trust CLI commands and the demo use.
package adminclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
)

// Client is an authenticated admin API client.
type Client struct {
	BaseURL string
	HTTP    *http.Client
	// ID is the credential's SPIFFE ID (the admin's or an auditor's).
	ID spiffeid.ID
}

// Load builds a client from an admin directory. serverURL overrides DIR/server_url.
func Load(dir, serverURL string) (*Client, error) {
	return LoadCredential(dir, "admin", serverURL)
}

// LoadCredential builds a client from a credential directory holding NAME.pem,
// NAME_key.pem, bundle.pem and server_url: the admin credential (name "admin") or an
// auditor credential that `warden auditor create` wrote (name "auditor").
func LoadCredential(dir, name, serverURL string) (*Client, error) {
	svid, err := x509svid.Load(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"_key.pem"))
	if err != nil {
		return nil, fmt.Errorf("%s credential: %w (is the directory right, and has `warden server` run once?)", name, err)
	}
	td := svid.ID.TrustDomain()
	bundle, err := x509bundle.Load(td, filepath.Join(dir, "bundle.pem"))
	if err != nil {
		return nil, fmt.Errorf("admin bundle: %w", err)
	}
	if serverURL == "" {
		b, err := os.ReadFile(filepath.Join(dir, "server_url"))
		if err != nil {
			return nil, fmt.Errorf("no --server given and %s has no server_url: %w", dir, err)
		}
		serverURL = strings.TrimSpace(string(b))
	}
	server := spiffeid.RequireFromPath(td, "/warden/server")
	return &Client{
		ID:      svid.ID,
		BaseURL: strings.TrimRight(serverURL, "/"),
		HTTP: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig: tlsconfig.MTLSClientConfig(svid, bundle, tlsconfig.AuthorizeID(server)),
		}},
	}, nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return api.Do(ctx, c.HTTP, method, c.BaseURL+path, in, out)
}

// CreateEntry registers an agent and returns the entry with its SPIFFE ID.
func (c *Client) CreateEntry(ctx context.Context, e api.Entry) (api.Entry, error) {
	var out api.Entry
	err := c.do(ctx, http.MethodPost, api.PathAdminEntries, e, &out)
	return out, err
}

// ListEntries lists the entries with their trust-state status.
func (c *Client) ListEntries(ctx context.Context) ([]api.Entry, error) {
	var out []api.Entry
	err := c.do(ctx, http.MethodGet, api.PathAdminEntries, nil, &out)
	return out, err
}

// DeleteEntry removes an entry and its unused join tokens.
func (c *Client) DeleteEntry(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, api.PathAdminEntries+"/"+name, nil, nil)
}

// CreateToken makes a one-time join token for an entry.
func (c *Client) CreateToken(ctx context.Context, entry string, ttl time.Duration) (api.TokenResponse, error) {
	var out api.TokenResponse
	err := c.do(ctx, http.MethodPost, api.PathAdminTokens, api.TokenRequest{Entry: entry, TTLSec: int(ttl / time.Second)}, &out)
	return out, err
}

// ChangeTrust applies op (revoke, quarantine, suspend, restore) and returns the new
// trust-state version.
func (c *Client) ChangeTrust(ctx context.Context, op string, ch api.TrustChange) (int64, error) {
	var out api.TrustChangeResponse
	err := c.do(ctx, http.MethodPost, api.PathAdminTrust+op, ch, &out)
	return out.Version, err
}

// Challenge pushes an event-driven re-attestation challenge to the agent with this SPIFFE
// ID; it returns the trust-state version carrying it and the agent's deadline.
func (c *Client) Challenge(ctx context.Context, spiffeID, reason string) (api.AdminChallengeResponse, error) {
	var out api.AdminChallengeResponse
	err := c.do(ctx, http.MethodPost, api.PathAdminAttestChallenge, api.AdminChallengeRequest{ID: spiffeID, Reason: reason}, &out)
	return out, err
}

// SetEntryAttrs replaces an entry's attributes (e.g. new reference values).
func (c *Client) SetEntryAttrs(ctx context.Context, name string, attrs json.RawMessage) (api.Entry, error) {
	var out api.Entry
	err := c.do(ctx, http.MethodPut, api.PathAdminEntries+"/"+name+"/attrs", attrs, &out)
	return out, err
}

// TrustState fetches the current signed trust-state document (GET /v1/trust-state) and
// returns it exactly as served; verify it with truststate.Verify before using it.
func (c *Client) TrustState(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+api.PathTrustState, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("trust state: %d %s", res.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// RotateCA replaces the intermediate CA now; reason goes to the audit log.
func (c *Client) RotateCA(ctx context.Context, reason string) (api.CARotateResponse, error) {
	var out api.CARotateResponse
	err := c.do(ctx, http.MethodPost, api.PathAdminCARotate, api.CARotateRequest{Reason: reason}, &out)
	return out, err
}

// EngageKillSwitch engages a kill switch and returns its id and the trust-state version.
func (c *Client) EngageKillSwitch(ctx context.Context, req api.KillSwitchRequest) (api.LiveChangeResponse, error) {
	var out api.LiveChangeResponse
	err := c.do(ctx, http.MethodPost, api.PathAdminKillSwitches, req, &out)
	return out, err
}

// ReleaseKillSwitch releases switches by id or by scope and value.
func (c *Client) ReleaseKillSwitch(ctx context.Context, req api.KillSwitchRelease) (api.LiveChangeResponse, error) {
	var out api.LiveChangeResponse
	err := c.do(ctx, http.MethodPost, api.PathAdminKillSwitchRelease, req, &out)
	return out, err
}

// Incident starts or ends incident mode (op "start" or "end").
func (c *Client) Incident(ctx context.Context, op string, req api.IncidentRequest) (api.LiveChangeResponse, error) {
	var out api.LiveChangeResponse
	err := c.do(ctx, http.MethodPost, api.PathAdminIncident+op, req, &out)
	return out, err
}

// SetZone sets a zone's state and max_staleness.
func (c *Client) SetZone(ctx context.Context, name string, req api.ZoneRequest) (api.LiveChangeResponse, error) {
	var out api.LiveChangeResponse
	err := c.do(ctx, http.MethodPut, api.PathAdminZones+name, req, &out)
	return out, err
}

// Status returns what is in force now.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var out api.Status
	err := c.do(ctx, http.MethodGet, api.PathAdminStatus, nil, &out)
	return out, err
}

// PushPolicy uploads a signed policy bundle; the control plane verifies it and names its
// revision in the trust state.
func (c *Client) PushPolicy(ctx context.Context, req api.PolicyPush) (api.PolicyPushResponse, error) {
	var out api.PolicyPushResponse
	err := c.do(ctx, http.MethodPost, api.PathAdminPolicyBundles, req, &out)
	return out, err
}

// PolicyStatus returns the active policy revision and the bundles pushed.
func (c *Client) PolicyStatus(ctx context.Context) (api.PolicyStatus, error) {
	var out api.PolicyStatus
	err := c.do(ctx, http.MethodGet, api.PathAdminPolicy, nil, &out)
	return out, err
}

// Gates returns every gate's last heartbeat with its flags.
func (c *Client) Gates(ctx context.Context) ([]api.GateStatus, error) {
	var out []api.GateStatus
	err := c.do(ctx, http.MethodGet, api.PathAdminGates, nil, &out)
	return out, err
}
