package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// workloadIdentity is a gate's identity from a SPIFFE Workload API socket
// (identity.source: workload_api): go-spiffe's X509Source, which follows every rotation
// the socket pushes. The TLS configs ask it for the newest SVID at every handshake.
type workloadIdentity struct {
	*workloadapi.X509Source
	client *http.Client
}

// openWorkloadIdentity connects to the socket and waits (at most 30 s) for the first
// SVID. The HTTP client for the control plane presents it and trusts only
// spiffe://TD/warden/server.
func openWorkloadIdentity(addr string) (*workloadIdentity, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(addr)))
	if err != nil {
		return nil, fmt.Errorf("identity.workload_api %s: no SVID: %w", addr, err)
	}
	sv, err := src.GetX509SVID()
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("identity.workload_api %s: %w", addr, err)
	}
	server := spiffeid.RequireFromPath(sv.ID.TrustDomain(), "/warden/server")
	w := &workloadIdentity{X509Source: src}
	w.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeID(server)), MaxIdleConnsPerHost: 2,
		IdleConnTimeout: 90 * time.Second}}
	return w, nil
}

func (w *workloadIdentity) HTTPClient() *http.Client { return w.client }

// Run waits for ctx: the X509Source follows the socket by itself (reconnecting with
// backoff if the agent restarts).
func (w *workloadIdentity) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Reload does nothing: the socket pushes every change.
func (w *workloadIdentity) Reload() (bool, error) { return false, nil }
