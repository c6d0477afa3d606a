package demo

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/truststate"
)

// WatchTrust follows the control plane's trust state as a gate does — the watch stream,
// every document verified against the bundle — authenticated with the admin credential,
// so it works whatever happens to the agents. Documents arrive on the channel (the
// current one first) until ctx ends.
func (s *Stack) WatchTrust(ctx context.Context) (<-chan *truststate.Document, error) {
	adminDir := filepath.Join(s.ServerDir(), "admin")
	sv, err := x509svid.Load(filepath.Join(adminDir, "admin.pem"), filepath.Join(adminDir, "admin_key.pem"))
	if err != nil {
		return nil, err
	}
	b, err := x509bundle.Load(s.TD, filepath.Join(adminDir, "bundle.pem"))
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsconfig.MTLSClientConfig(sv, b,
		tlsconfig.AuthorizeID(spiffeid.RequireFromPath(s.TD, "/warden/server")))}}
	f := truststate.NewFollower(truststate.FollowerConfig{URL: s.URL, Client: client, Bundle: b, TrustDomain: s.TD})
	updates := make(chan *truststate.Document, 64)
	go func() {
		defer client.CloseIdleConnections()
		_ = f.Run(ctx, func(d *truststate.Document) {
			select {
			case updates <- d:
			case <-ctx.Done():
			}
		})
	}()
	return updates, nil
}

// ChangeAndWatch runs act once the current trust state has arrived and returns how long
// until a newer document that done accepts arrived (at most timeout).
func (s *Stack) ChangeAndWatch(ctx context.Context, timeout time.Duration, act func() error, done func(*truststate.Document) bool) (time.Duration, *truststate.Document, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	updates, err := s.WatchTrust(ctx)
	if err != nil {
		return 0, nil, err
	}
	var base int64
	select {
	case d := <-updates:
		base = d.Version
	case <-ctx.Done():
		return 0, nil, errors.New("no trust state from the stream")
	}
	start := time.Now()
	if err := act(); err != nil {
		return 0, nil, err
	}
	for {
		select {
		case d := <-updates:
			if d.Version > base && done(d) {
				return time.Since(start), d, nil
			}
		case <-ctx.Done():
			return 0, nil, errors.New("the trust state did not change as expected within " + timeout.String())
		}
	}
}

// TrustState returns the control plane's current trust state, verified.
func (s *Stack) TrustState(ctx context.Context) (*truststate.Document, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	updates, err := s.WatchTrust(ctx)
	if err != nil {
		return nil, err
	}
	select {
	case d := <-updates:
		return d, nil
	case <-ctx.Done():
		return nil, errors.New("no trust state from the control plane")
	}
}
