// This file holds the signing half of intents: SignIntent turns what a workload is about
// to do into a compact JWS bound to the request body and to its X509-SVID
// (docs/intent-spec.md).

package sdk

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/intent"
)

// IntentHeader is the HTTP header that carries a signed intent to a Warden gate.
const IntentHeader = intent.HeaderName

// DefaultIntentTTL is the lifetime SignIntent gives an intent when Intent.TTL is zero.
// Gates refuse lifetimes over their maximum (60 s by default).
const DefaultIntentTTL = 30 * time.Second

// Intent is what a workload declares it is about to do. SignIntent adds the sender
// (iss, from the certificate), a fresh 128-bit jti, iat and exp, the body digest and the
// certificate thumbprint that binds the intent to the mTLS connection.
type Intent struct {
	Audience   string        // SPIFFE ID of the receiving agent (required)
	Action     string        // e.g. "purchase_order.create" (required)
	Resource   string        // optional
	Workflow   string        // workflow id (optional)
	Purpose    string        // why, for people reading the audit log (optional)
	Scope      []string      // what the intent may touch; sorted and deduplicated on signing
	Approval   string        // approval id, when a policy obligation asked for one (optional)
	Delegation *IntentActor  // prior hops when acting for someone else (optional)
	TTL        time.Duration // lifetime; DefaultIntentTTL when zero
}

// IntentActor is one prior hop of a delegation chain (RFC 8693 nested act): Subject
// acted with Scope on behalf of Actor. Each hop's scope must contain the next one's.
type IntentActor struct {
	Subject string
	Scope   []string
	Actor   *IntentActor
}

// SignIntent signs in for an HTTP request with body, as the workload holding the
// X509-SVID cert and its private key (Ed25519 or ECDSA P-256), at time now. It returns
// the compact JWS to send in the IntentHeader header over the mTLS connection that
// presents cert. Call it per request with the current SVID; after a rotation, new
// intents carry the new certificate's thumbprint.
func SignIntent(cert *x509.Certificate, key crypto.Signer, in Intent, body []byte, now time.Time) (string, error) {
	if cert == nil || key == nil {
		return "", errors.New("sdk: SignIntent needs a certificate and its key")
	}
	if cert.IsCA {
		return "", errors.New("sdk: an X509-SVID leaf is not a CA certificate")
	}
	id, err := x509svid.IDFromCert(cert)
	if err != nil {
		return "", fmt.Errorf("sdk: certificate is not an X509-SVID: %w", err)
	}
	ttl := in.TTL
	if ttl == 0 {
		ttl = DefaultIntentTTL
	}
	if ttl < time.Second {
		return "", errors.New("sdk: intent TTL must be at least 1s")
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("sdk: %w", err)
	}
	iat := now.Unix()
	c := &intent.Claims{
		Issuer:         id.String(),
		Audience:       in.Audience,
		ID:             base64.RawURLEncoding.EncodeToString(jti[:]),
		IssuedAt:       iat,
		Expiry:         iat + int64(ttl/time.Second),
		Workflow:       in.Workflow,
		Action:         in.Action,
		Resource:       in.Resource,
		Purpose:        in.Purpose,
		Scope:          normScope(in.Scope),
		BodyDigest:     intent.BodyDigest(body),
		CertThumbprint: intent.Thumbprint(cert),
		Delegation:     toActor(in.Delegation),
		Approval:       in.Approval,
	}
	tok, err := intent.Sign(c, key)
	if err != nil {
		return "", fmt.Errorf("sdk: %w", err)
	}
	return tok, nil
}

// SetIntent signs in for req (whose body is body) and sets the IntentHeader header.
func SetIntent(req *http.Request, cert *x509.Certificate, key crypto.Signer, in Intent, body []byte) error {
	tok, err := SignIntent(cert, key, in, body, time.Now())
	if err != nil {
		return err
	}
	req.Header.Set(IntentHeader, tok)
	return nil
}

func normScope(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return intent.NormalizeScope(s)
}

func toActor(a *IntentActor) *intent.Actor {
	if a == nil {
		return nil
	}
	return &intent.Actor{Subject: a.Subject, Scope: normScope(a.Scope), Actor: toActor(a.Actor)}
}
