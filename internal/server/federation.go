package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/federation"
	"github.com/warden-a2a/warden/internal/truststate"
)

// SPIFFE federation, the consuming side (docs/federation.md): an operator adds a
// relationship with a foreign trust domain (its bundle endpoint URL, profile and, for
// https_spiffe, endpoint SPIFFE ID); the server fetches the foreign bundle at once and
// then at its refresh hint (fedrefresh.go), and every version of it travels in the
// signed trust state, which is how gates learn to accept that trust domain's SVIDs.

// fedBundles is the bundle source of this server's federation: its own root and the
// federated bundles of the current trust state.
func (s *Server) fedBundles() *federation.Source {
	return &federation.Source{Home: s.td, HomeX509: s.ca.X509Bundle(), TrustState: func() *truststate.Document {
		_, doc := s.trust.Current()
		return doc
	}}
}

func endpointOf(td spiffeid.TrustDomain, fd truststate.FederatedDomain) (federation.Endpoint, error) {
	ep := federation.Endpoint{TrustDomain: td, URL: fd.EndpointURL, Profile: fd.Profile}
	if fd.EndpointSPIFFEID != "" {
		id, err := spiffeid.FromString(fd.EndpointSPIFFEID)
		if err != nil {
			return ep, err
		}
		ep.SPIFFEID = id
	}
	return ep, ep.Validate()
}

// fetchConfig authenticates endpoints: https_spiffe with cur as the foreign trust
// domain's bundle (the operator's at first, then the newest fetched: §5.2.2.4), other
// trust domains' bundles from what the server holds; https_web with the configured
// Web PKI roots.
func (s *Server) fetchConfig(td spiffeid.TrustDomain, cur *spiffebundle.Bundle) federation.FetchConfig {
	var src x509bundle.Source = s.fedBundles()
	if cur != nil {
		src = withBundle{td: td, b: cur.X509Bundle(), rest: src}
	}
	return federation.FetchConfig{Bundles: src, WebRoots: s.cfg.FederationWebRoots}
}

// withBundle answers td from b and every other trust domain from rest.
type withBundle struct {
	td   spiffeid.TrustDomain
	b    *x509bundle.Bundle
	rest x509bundle.Source
}

func (w withBundle) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td == w.td {
		return w.b, nil
	}
	return w.rest.GetX509BundleForTrustDomain(td)
}

// commitFederation writes a federation change to the trust state with its audit event,
// in one transaction (the outbox): no change without its event.
func (s *Server) commitFederation(ctx context.Context, fn func(*truststate.Document) error, ev audit.Event) (*truststate.Document, error) {
	return s.commitTrust(ctx, func(d *truststate.Document) ([]audit.Event, error) {
		if err := fn(d); err != nil {
			return nil, err
		}
		return []audit.Event{ev}, nil
	})
}

// errFederationChanged aborts an update whose relationship changed meanwhile.
var errFederationChanged = errors.New("server: federation relationship changed meanwhile")

// handleAddFederation adds a federation relationship: POST /v1/admin/federation.
func (s *Server) handleAddFederation(w http.ResponseWriter, r *http.Request) {
	var req api.FederationRequest
	if !s.readJSON(w, r, &req) {
		return
	}
	td, ep, boot, err := s.checkFederationRequest(req)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, err.Error())
		return
	}
	if _, doc := s.trust.Current(); doc.Federation[td.Name()].EndpointURL != "" {
		s.fail(w, r, http.StatusConflict, api.ReasonConflict, td.Name()+" is already federated; remove it first")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	b, err := federation.Fetch(ctx, ep, s.fetchConfig(td, boot))
	if err == nil && !federation.Newer(boot, b) {
		err = errors.New("federation: the endpoint serves a bundle older (spiffe_sequence) than the one supplied")
	}
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, api.ReasonFederationFetch, err.Error())
		return
	}
	now := s.now().UTC()
	fd := truststate.FederatedDomain{EndpointURL: ep.URL, Profile: ep.Profile, Bundle: mustMarshal(b), RefreshedAt: now, AddedAt: now,
		Role: req.Role, Class: req.Class, Zone: req.Zone}
	if !ep.SPIFFEID.IsZero() {
		fd.EndpointSPIFFEID = ep.SPIFFEID.String()
	}
	ev := adminEvent(r, audit.Event{Kind: audit.KindFederation, Subject: td.IDString(), Outcome: "added",
		Reason: "operator_federation_add", Detail: map[string]string{"endpoint_url": ep.URL, "profile": ep.Profile, "text": req.Reason}})
	next, err := s.commitFederation(r.Context(), func(d *truststate.Document) error {
		if d.Federation[td.Name()].EndpointURL != "" {
			return errFederationChanged
		}
		d.Federation = setKey(d.Federation, td.Name(), fd)
		return nil
	}, ev)
	if errors.Is(err, errFederationChanged) {
		s.fail(w, r, http.StatusConflict, api.ReasonConflict, td.Name()+" is already federated; remove it first")
		return
	} else if err != nil {
		s.changeFailed(w, r, err)
		return
	}
	s.fedStatus.fetched(td.Name(), now, nil, federation.NextRefresh(b, s.cfg.FederationMinRefresh))
	s.log.Info("federation added", "trust_domain", td.Name(), "endpoint", ep.URL, "profile", ep.Profile, "version", next.Version)
	out := s.apiFederation(td.Name(), fd)
	out.Version = next.Version
	writeJSON(w, http.StatusCreated, out)
}

// checkFederationRequest validates an add: a foreign trust domain, valid endpoint
// parameters, known policy attributes, and the bundle an https_spiffe endpoint needs.
func (s *Server) checkFederationRequest(req api.FederationRequest) (spiffeid.TrustDomain, federation.Endpoint, *spiffebundle.Bundle, error) {
	td, err := spiffeid.TrustDomainFromString(req.TrustDomain)
	if err != nil || strings.Contains(req.TrustDomain, "/") {
		return td, federation.Endpoint{}, nil, fmt.Errorf("trust_domain %q: a trust domain name, e.g. partner.example", req.TrustDomain)
	}
	if td == s.td {
		return td, federation.Endpoint{}, nil, errors.New("a trust domain cannot federate with itself")
	}
	ep := federation.Endpoint{TrustDomain: td, URL: req.EndpointURL, Profile: req.Profile}
	if req.EndpointSPIFFEID != "" {
		if ep.SPIFFEID, err = spiffeid.FromString(req.EndpointSPIFFEID); err != nil {
			return td, ep, nil, fmt.Errorf("endpoint_spiffe_id: %w", err)
		}
	}
	if err := ep.Validate(); err != nil {
		return td, ep, nil, err
	}
	if req.Class != "" && !slices.Contains(Classes, req.Class) {
		return td, ep, nil, fmt.Errorf("class must be one of %s", strings.Join(Classes, ", "))
	}
	if req.Zone != "" && !nameRE.MatchString(req.Zone) {
		return td, ep, nil, errors.New("zone must match [a-z0-9][a-z0-9-]{0,62}")
	}
	if len(req.Role) > 64 || len(req.Reason) > 512 {
		return td, ep, nil, errors.New("role at most 64 bytes, reason at most 512")
	}
	var boot *spiffebundle.Bundle
	if len(req.Bundle) > 0 {
		if boot, err = federation.ParseBundle(td, req.Bundle); err != nil {
			return td, ep, nil, fmt.Errorf("bundle: %w", err)
		}
	}
	if ep.SelfServing() && boot == nil {
		return td, ep, nil, errors.New("a self-serving https_spiffe endpoint needs the trust domain's bundle to authenticate the first fetch (SPIFFE Federation 5.2.2.2)")
	}
	if ep.Profile == federation.ProfileSPIFFE && !ep.SelfServing() && boot == nil {
		if etd := ep.SPIFFEID.TrustDomain(); !s.fedBundles().Trusted(etd) {
			return td, ep, nil, fmt.Errorf("the endpoint's trust domain %s is neither this one nor federated", etd.Name())
		}
	}
	return td, ep, boot, nil
}

// handleRemoveFederation ends a relationship: DELETE /v1/admin/federation/{td}[?reason=].
func (s *Server) handleRemoveFederation(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("td")
	td, err := spiffeid.TrustDomainFromString(name)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "not a trust domain name: "+name)
		return
	}
	reason := r.URL.Query().Get("reason")
	if len(reason) > 512 {
		s.fail(w, r, http.StatusBadRequest, api.ReasonBadRequest, "reason at most 512 bytes")
		return
	}
	var gone truststate.FederatedDomain
	ev := adminEvent(r, audit.Event{Kind: audit.KindFederation, Subject: td.IDString(), Outcome: "removed",
		Reason: "operator_federation_remove", Detail: map[string]string{"text": reason}})
	doc, err := s.commitFederation(r.Context(), func(d *truststate.Document) error {
		fd, ok := d.Federation[td.Name()]
		if !ok {
			return errFederationChanged
		}
		gone = fd
		delete(d.Federation, td.Name())
		return nil
	}, ev)
	if errors.Is(err, errFederationChanged) {
		s.fail(w, r, http.StatusNotFound, api.ReasonNotFound, td.Name()+" is not federated")
		return
	} else if err != nil {
		s.changeFailed(w, r, err)
		return
	}
	s.fedStatus.forget(td.Name())
	s.log.Info("federation removed", "trust_domain", td.Name(), "endpoint", gone.EndpointURL, "version", doc.Version)
	writeJSON(w, http.StatusOK, api.TrustChangeResponse{Version: doc.Version})
}

// handleListFederation lists the relationships: GET /v1/admin/federation.
func (s *Server) handleListFederation(w http.ResponseWriter, r *http.Request) {
	_, doc := s.trust.Current()
	names := make([]string, 0, len(doc.Federation))
	for n := range doc.Federation {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]api.Federation, 0, len(names))
	for _, n := range names {
		out = append(out, s.apiFederation(n, doc.Federation[n]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiFederation(name string, fd truststate.FederatedDomain) api.Federation {
	out := api.Federation{TrustDomain: name, EndpointURL: fd.EndpointURL, Profile: fd.Profile, EndpointSPIFFEID: fd.EndpointSPIFFEID,
		Role: fd.Role, Class: fd.Class, Zone: fd.Zone, AddedAt: fd.AddedAt, RefreshedAt: fd.RefreshedAt}
	if td, err := spiffeid.TrustDomainFromString(name); err == nil {
		if b, err := federation.ParseBundle(td, fd.Bundle); err == nil {
			out.X509Authorities, out.JWTAuthorities = len(b.X509Authorities()), len(b.JWTAuthorities())
			if seq, ok := b.SequenceNumber(); ok {
				out.Sequence = &seq
			}
			if h, ok := b.RefreshHint(); ok {
				out.RefreshHintSec = int64(h / time.Second)
			}
		}
	}
	out.LastAttempt, out.LastError, out.NextRefresh = s.fedStatus.get(name)
	return out
}

// mustMarshal encodes a bundle that was just parsed; it cannot fail.
func mustMarshal(b *spiffebundle.Bundle) []byte {
	doc, err := b.Marshal()
	if err != nil {
		panic(err)
	}
	return doc
}
