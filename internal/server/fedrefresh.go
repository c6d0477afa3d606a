package server

import (
	"context"
	"crypto/rand"
	"errors"
	"math/big"
	"strconv"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/federation"
	"github.com/warden-a2a/warden/internal/truststate"
)

// Keeping federated bundles fresh (SPIFFE Federation §6.2): one loop per relationship
// fetches the foreign bundle at its refresh hint (bounded, federation.NextRefresh, with
// up to 10% jitter), authenticating a self-serving https_spiffe endpoint with the newest
// bundle held (§5.2.2.4). A changed bundle becomes a new trust-state version; the same
// bundle writes nothing; a failed fetch keeps the bundle held and is tried again at the
// next interval, not sooner (§6.2). Every replica runs the loops; a bundle another
// replica already wrote compares equal and writes nothing.

// fedStatus is what this replica saw of each relationship's fetches.
type fedStatus struct {
	mu sync.Mutex
	m  map[string]fedState
}

type fedState struct {
	attempt time.Time
	err     string
	next    time.Time
}

func (f *fedStatus) fetched(td string, at time.Time, err error, wait time.Duration) (wasFailing bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]fedState{}
	}
	prev := f.m[td]
	st := fedState{attempt: at, next: at.Add(wait)}
	if err != nil {
		st.err = err.Error()
	}
	f.m[td] = st
	return prev.err != ""
}

func (f *fedStatus) forget(td string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, td)
}

func (f *fedStatus) get(td string) (time.Time, string, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.m[td]
	return st.attempt, st.err, st.next
}

// refreshFederation runs one refresh loop per relationship of the current trust state
// until ctx ends, starting loops for relationships added and stopping those removed.
func (s *Server) refreshFederation(ctx context.Context) {
	type loop struct {
		cancel context.CancelFunc
		ep     truststate.FederatedDomain // endpoint parameters the loop was started for
		done   chan struct{}
	}
	loops := map[string]loop{}
	defer func() {
		for _, l := range loops {
			l.cancel()
			<-l.done
		}
	}()
	for range s.trust.Watch(ctx) {
		_, doc := s.trust.Current()
		for name, l := range loops {
			fd, ok := doc.Federation[name]
			if !ok || fd.EndpointURL != l.ep.EndpointURL || fd.Profile != l.ep.Profile || fd.EndpointSPIFFEID != l.ep.EndpointSPIFFEID {
				l.cancel()
				<-l.done
				delete(loops, name)
			}
		}
		for name, fd := range doc.Federation {
			if _, ok := loops[name]; ok {
				continue
			}
			td, err := spiffeid.TrustDomainFromString(name)
			if err != nil {
				continue
			}
			lctx, cancel := context.WithCancel(ctx)
			l := loop{cancel: cancel, ep: fd, done: make(chan struct{})}
			loops[name] = l
			go func() { defer close(l.done); s.refreshLoop(lctx, td) }()
		}
	}
}

// refreshLoop keeps one federated bundle fresh until ctx ends.
func (s *Server) refreshLoop(ctx context.Context, td spiffeid.TrustDomain) {
	for {
		_, doc := s.trust.Current()
		fd, ok := doc.Federation[td.Name()]
		if !ok {
			return
		}
		cur, _ := federation.ParseBundle(td, fd.Bundle)
		// Due at the time the last fetch set; a relationship this replica has not
		// fetched yet (it just started) at once.
		wait := time.Duration(0)
		if _, _, next := s.fedStatus.get(td.Name()); !next.IsZero() {
			wait = min(jitter(federation.NextRefresh(cur, s.cfg.FederationMinRefresh)), max(time.Until(next), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		s.refreshOnce(ctx, td)
	}
}

// refreshOnce fetches td's bundle once and writes it to the trust state if it changed.
func (s *Server) refreshOnce(ctx context.Context, td spiffeid.TrustDomain) {
	_, doc := s.trust.Current()
	fd, ok := doc.Federation[td.Name()]
	if !ok {
		return
	}
	ep, err := endpointOf(td, fd)
	if err != nil {
		s.log.Error("federation: stored endpoint is invalid", "trust_domain", td.Name(), "err", err)
		return
	}
	cur, _ := federation.ParseBundle(td, fd.Bundle)
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	b, err := federation.Fetch(fctx, ep, s.fetchConfig(td, cur))
	cancel()
	if ctx.Err() != nil {
		return
	}
	now := s.now().UTC()
	if err == nil && !federation.Newer(cur, b) {
		seq, _ := b.SequenceNumber()
		held, _ := cur.SequenceNumber()
		s.fedStatus.fetched(td.Name(), now, errRollback, federation.NextRefresh(cur, s.cfg.FederationMinRefresh))
		s.log.Warn("federation: bundle with a lower sequence number refused", "trust_domain", td.Name(), "got", seq, "held", held)
		s.emit(ctx, audit.Event{Kind: audit.KindFederation, Subject: td.IDString(), Outcome: "refused", Reason: "bundle_rollback",
			Detail: map[string]string{"spiffe_sequence": strconv.FormatUint(seq, 10), "held_sequence": strconv.FormatUint(held, 10)}})
		return
	}
	if err != nil {
		if !s.fedStatus.fetched(td.Name(), now, err, federation.NextRefresh(cur, s.cfg.FederationMinRefresh)) {
			s.emit(ctx, audit.Event{Kind: audit.KindFederation, Subject: td.IDString(), Outcome: "refused", Reason: "bundle_fetch_failed",
				Detail: map[string]string{"endpoint_url": ep.URL, "error": err.Error()}})
		}
		s.log.Warn("federation: bundle refresh failed; keeping the bundle held", "trust_domain", td.Name(), "endpoint", ep.URL, "err", err)
		return
	}
	s.fedStatus.fetched(td.Name(), now, nil, federation.NextRefresh(b, s.cfg.FederationMinRefresh))
	if cur != nil && cur.Equal(b) {
		return
	}
	ev := byServer(audit.Event{Kind: audit.KindFederation, Subject: td.IDString(), Outcome: "updated", Reason: "bundle_refreshed",
		Detail: map[string]string{"x509_authorities": strconv.Itoa(len(b.X509Authorities())), "jwt_authorities": strconv.Itoa(len(b.JWTAuthorities()))}})
	if seq, ok := b.SequenceNumber(); ok {
		ev.Detail["spiffe_sequence"] = strconv.FormatUint(seq, 10)
	}
	raw := mustMarshal(b)
	_, err = s.commitFederation(ctx, func(d *truststate.Document) error {
		held, ok := d.Federation[td.Name()]
		if !ok || held.EndpointURL != fd.EndpointURL || held.Profile != fd.Profile || held.EndpointSPIFFEID != fd.EndpointSPIFFEID {
			return errFederationChanged // removed or re-added meanwhile: this fetch is for an old relationship
		}
		if hb, err := federation.ParseBundle(td, held.Bundle); err == nil && hb.Equal(b) {
			return errFederationChanged // another replica wrote it already
		}
		held.Bundle, held.RefreshedAt = raw, now
		d.Federation[td.Name()] = held
		return nil
	}, ev)
	switch {
	case err == nil:
		s.log.Info("federation: bundle updated", "trust_domain", td.Name(), "x509_authorities", len(b.X509Authorities()), "jwt_authorities", len(b.JWTAuthorities()))
	case !errors.Is(err, errFederationChanged):
		s.log.Error("federation: bundle update not written", "trust_domain", td.Name(), "err", err)
	}
}

var errRollback = errors.New("federation: bundle sequence number lower than the one held")

// jitter adds up to 10% to d, so that a fleet of replicas and relationships spreads out.
func jitter(d time.Duration) time.Duration {
	if d < 10 {
		return d
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(d/10)))
	return d + time.Duration(n.Int64())
}
