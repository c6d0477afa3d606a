package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/ca"
)

// JWT-SVIDs that others can verify: an OpenID Connect discovery document (OpenID Connect
// Discovery 1.0 §3, §4) whose jwks_uri is a JWK Set (RFC 7517 §5) of the JWT-SVID keys,
// the same keys the SPIFFE bundle carries with use "jwt-svid". The keys rotate with
// overlap (internal/ca/jwtkeys.go): a successor is published before it signs, and a
// retired key stays published until every token it signed has expired.

// Defaults of the key schedule (Config).
const (
	defaultJWTKeyRotation   = 24 * time.Hour
	defaultBundleRefresh    = 5 * time.Minute
	defaultKeyCheckInterval = 30 * time.Second
)

func (c *Config) keyDefaults() error {
	if c.JWTKeyRotation == 0 {
		c.JWTKeyRotation = defaultJWTKeyRotation
	}
	if c.BundleRefreshHint == 0 {
		c.BundleRefreshHint = defaultBundleRefresh
	}
	if c.KeyCheckInterval == 0 {
		c.KeyCheckInterval = defaultKeyCheckInterval
	}
	if c.BundleRefreshHint < time.Second || c.KeyCheckInterval < 0 {
		return errors.New("server: bundle refresh hint must be at least 1s and the key check interval positive")
	}
	if c.JWTIssuer != "" && !strings.HasPrefix(c.JWTIssuer, "https://") {
		return fmt.Errorf("server: jwt issuer %q: must be an https URL (OpenID Connect Discovery §2)", c.JWTIssuer)
	}
	c.JWTIssuer = strings.TrimRight(c.JWTIssuer, "/")
	return c.jwtKeyPolicy().Validate()
}

// jwtKeyPolicy publishes a successor min(3 refresh hints, half a rotation) ahead.
func (c *Config) jwtKeyPolicy() ca.JWTKeyPolicy {
	return ca.JWTKeyPolicy{Rotation: c.JWTKeyRotation, PublishAhead: min(3*c.BundleRefreshHint, c.JWTKeyRotation/2)}
}

// jwtIssuer is the configured issuer, else the API's URL.
func (s *Server) jwtIssuer() string {
	if s.cfg.JWTIssuer != "" {
		return s.cfg.JWTIssuer
	}
	return s.URL()
}

// OIDCDiscovery is the OpenID Connect discovery document the server publishes.
type OIDCDiscovery struct {
	Issuer                 string   `json:"issuer"`
	JWKSURI                string   `json:"jwks_uri"`
	AuthorizationEndpoint  string   `json:"authorization_endpoint"` // none: Warden issues no tokens by redirect
	ResponseTypes          []string `json:"response_types_supported"`
	SubjectTypes           []string `json:"subject_types_supported"`
	IDTokenSigningAlgs     []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported        []string `json:"claims_supported"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	RequestURIParamSupport bool     `json:"request_uri_parameter_supported"`
}

func (s *Server) handleOIDCDiscovery(w http.ResponseWriter, r *http.Request) {
	iss := s.jwtIssuer()
	w.Header().Set("Cache-Control", s.keysCacheControl())
	writeJSON(w, http.StatusOK, OIDCDiscovery{
		Issuer: iss, JWKSURI: iss + api.PathJWKS, AuthorizationEndpoint: "",
		ResponseTypes: []string{"id_token"}, SubjectTypes: []string{"public"},
		IDTokenSigningAlgs: []string{"ES256"}, ClaimsSupported: []string{"sub", "aud", "exp", "iat", "iss"},
	})
}

// handleJWKS serves the JWT-SVID keys as a JWK Set: kty EC, crv P-256, kid, alg ES256,
// use sig — what an ordinary OpenID Connect relying party expects.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range s.ca.JWTKeys() {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public, KeyID: k.KID, Algorithm: string(jose.ES256), Use: "sig"})
	}
	w.Header().Set("Cache-Control", s.keysCacheControl())
	writeJSON(w, http.StatusOK, set)
}

// keysCacheControl lets caches keep the keys for one refresh hint: a successor is
// published at least that long before it signs.
func (s *Server) keysCacheControl() string {
	return "public, max-age=" + strconv.Itoa(int(s.cfg.BundleRefreshHint/time.Second))
}

// handleBundle serves the trust domain's SPIFFE bundle (SPIFFE Trust Domain and Bundle
// §4): the root, the JWT-SVID keys, refresh_hint and sequence_number. It is also the
// https_spiffe bundle endpoint (SPIFFE Federation §5.2.2), authenticated by the server's
// own X509-SVID, spiffe://TD/warden/server.
func (s *Server) handleBundle(w http.ResponseWriter, r *http.Request) {
	b := s.ca.SPIFFEBundle()
	b.SetRefreshHint(s.cfg.BundleRefreshHint)
	data, err := b.Marshal()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, api.ReasonInternal, "cannot marshal bundle")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

// rotateJWTKeys runs maintainJWTKeys every KeyCheckInterval until ctx ends.
func (s *Server) rotateJWTKeys(ctx context.Context) {
	t := time.NewTicker(s.cfg.KeyCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.maintainJWTKeys(ctx)
		}
	}
}

// maintainJWTKeys publishes a successor key when one is due and retires keys whose
// tokens have all expired. Each change is a ca_rotation audit event (subject jwt_key),
// appended before the key set is written: no change without its event.
func (s *Server) maintainJWTKeys(ctx context.Context) {
	ch, err := s.ca.MaintainJWTKeys(s.cfg.jwtKeyPolicy(), func(ch ca.JWTKeyChange) error {
		var evs []audit.Event
		seq := strconv.FormatUint(ch.Sequence, 10)
		for _, k := range ch.Published {
			evs = append(evs, byServer(audit.Event{Kind: audit.KindCARotation, Subject: "jwt_key",
				Outcome: "published", Reason: "jwt_key_due",
				Detail: map[string]string{"kid": k.KID, "active_from": k.ActiveFrom.UTC().Format(time.RFC3339), "bundle_sequence": seq}}))
		}
		for _, kid := range ch.Retired {
			evs = append(evs, byServer(audit.Event{Kind: audit.KindCARotation, Subject: "jwt_key",
				Outcome: "retired", Reason: "jwt_key_expired", Detail: map[string]string{"kid": kid, "bundle_sequence": seq}}))
		}
		st, err := s.staged(evs...)
		if err == nil {
			err = s.appendStaged(ctx, st)
		}
		if err != nil {
			return fmt.Errorf("server: JWT keys not changed: the audit event could not be appended: %w", err)
		}
		return nil
	})
	if err != nil {
		s.log.Error("jwt key maintenance failed", "err", err)
		return
	}
	for _, k := range ch.Published {
		s.log.Info("jwt-svid key published", "kid", k.KID, "active_from", k.ActiveFrom)
	}
	for _, kid := range ch.Retired {
		s.log.Info("jwt-svid key retired", "kid", kid)
	}
}
