package truststate

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/warden-a2a/warden/internal/store"
)

// SignerFunc returns the current signing key and its X509-SVID chain (leaf first).
type SignerFunc func() (crypto.Signer, []*x509.Certificate)

// Manager owns the trust state of one control plane: it applies changes as new signed
// versions in the store (compare-and-set on the version, so several replicas sharing one
// PostgreSQL never fork the history) and fans each new version out to watchers. Versions
// written by other replicas are picked up by polling the store every PollInterval.
type Manager struct {
	st     store.Store
	td     string
	signer SignerFunc
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	current store.TrustState
	doc     *Document
	subs    map[chan store.TrustState]struct{}
}

// PollInterval is how often a Manager looks for versions written by other replicas.
const PollInterval = 200 * time.Millisecond

// NewManager loads the newest trust state, creating version 1 when there is none.
func NewManager(ctx context.Context, st store.Store, trustDomain string, signer SignerFunc, now func() time.Time, log *slog.Logger) (*Manager, error) {
	if now == nil {
		now = time.Now
	}
	m := &Manager{st: st, td: trustDomain, signer: signer, now: now, log: log, subs: map[chan store.TrustState]struct{}{}}
	if err := m.refresh(ctx); errors.Is(err, store.ErrNotFound) {
		if _, err := m.Update(ctx, func(*Document) error { return nil }); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return m, nil
}

// Current returns the newest signed document and its decoded form (do not modify it).
func (m *Manager) Current() (store.TrustState, *Document) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current, m.doc
}

// Update applies fn to a copy of the newest document and stores the result as the next
// version, retrying when another replica wrote a version first. fn may be called more
// than once and must not have other side effects; an error from fn aborts the update.
func (m *Manager) Update(ctx context.Context, fn func(*Document) error) (*Document, error) {
	return m.UpdateAudited(ctx, func(d *Document) ([]store.Event, error) { return nil, fn(d) })
}

// UpdateAudited is Update whose fn also returns the audit events that record the change:
// they are staged in the same store transaction as the new version (store.Event, the
// outbox), so the version is never stored without them. fn sees the next document with
// Version and IssuedAt already set (it may name the version in its events); it is called
// again, with the next version number, when another replica won the race.
func (m *Manager) UpdateAudited(ctx context.Context, fn func(*Document) ([]store.Event, error)) (*Document, error) {
	for attempt := 0; attempt < 20; attempt++ {
		latest, err := m.st.LatestTrustState(ctx)
		var base *Document
		switch {
		case errors.Is(err, store.ErrNotFound):
			base = &Document{TrustDomain: m.td}
		case err != nil:
			return nil, fmt.Errorf("truststate: %w", err)
		default:
			base, err = decodeUnverified(latest.Signed)
			if err != nil {
				return nil, fmt.Errorf("truststate: stored version %d: %w", latest.Version, err)
			}
		}
		next := base.Clone()
		version, issued := latest.Version+1, m.now().UTC().Truncate(time.Millisecond)
		next.Version, next.IssuedAt = version, issued
		events, err := fn(next)
		if err != nil {
			return nil, err
		}
		next.Version, next.IssuedAt, next.TrustDomain = version, issued, m.td
		key, chain := m.signer()
		signed, err := Sign(next, key, chain)
		if err != nil {
			return nil, err
		}
		ts := store.TrustState{Version: next.Version, Signed: signed, CreatedAt: next.IssuedAt}
		err = m.st.PutTrustState(ctx, ts, events...)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("truststate: %w", err)
		}
		m.publish(ts, next)
		return next, nil
	}
	return nil, errors.New("truststate: too many concurrent updates")
}

// Watch returns a channel that receives every new version from now on (the newest one
// first). Slow receivers miss intermediate versions but always get the newest. The
// channel is closed when ctx ends.
func (m *Manager) Watch(ctx context.Context) <-chan store.TrustState {
	ch := make(chan store.TrustState, 1)
	m.mu.Lock()
	m.subs[ch] = struct{}{}
	ch <- m.current
	m.mu.Unlock()
	go func() {
		<-ctx.Done()
		m.mu.Lock()
		delete(m.subs, ch)
		close(ch)
		m.mu.Unlock()
	}()
	return ch
}

// Run polls the store for versions written by other replicas until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.refresh(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("trust state poll failed", "err", err)
			}
		}
	}
}

func (m *Manager) refresh(ctx context.Context) error {
	latest, err := m.st.LatestTrustState(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	have := m.current.Version
	m.mu.Unlock()
	if latest.Version <= have {
		return nil
	}
	doc, err := decodeUnverified(latest.Signed)
	if err != nil {
		return err
	}
	m.publish(latest, doc)
	return nil
}

func (m *Manager) publish(ts store.TrustState, doc *Document) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ts.Version <= m.current.Version {
		return
	}
	m.current, m.doc = ts, doc
	for ch := range m.subs {
		select {
		case <-ch: // drop the stale one; the newest wins
		default:
		}
		ch <- ts
	}
}

// decodeUnverified decodes a document the control plane itself stored. Relying parties
// must use Verify instead.
func decodeUnverified(signed []byte) (*Document, error) {
	parts := splitCompact(signed)
	if parts == nil {
		return nil, ErrMalformed
	}
	var doc Document
	if err := strictUnmarshal(parts[1], &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &doc, nil
}
