package gate

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-a2a/warden/internal/gate/legacy"
)

// legacyToken mints the downstream credential for one forwarded call.
func (g *Gate) legacyToken(peer, action, resource string, now time.Time) (string, error) {
	return MintLegacyToken(g.cfg.LegacyKey, g.cfg.Self.String(), peer, g.cfg.LegacyAudience, action, resource, now, g.cfg.LegacyTTL)
}

// MintLegacyToken mints the narrow downstream credential of legacy mode: an ES256 JWT
// (RFC 7519) with iss = the gate, sub = the verified caller, aud = the legacy system,
// one action (act) and resource (res), iat/exp with exp - iat = ttl and a 128-bit jti.
// legacy.Verifier checks it on the system's side.
func MintLegacyToken(key *ecdsa.PrivateKey, iss, sub, aud, action, resource string, now time.Time, ttl time.Duration) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	c := legacy.Claims{
		Claims: jwt.Claims{
			Issuer:   iss,
			Subject:  sub,
			Audience: jwt.Audience{aud},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(now.Add(ttl)),
			ID:       base64.RawURLEncoding.EncodeToString(id[:]),
		},
		Action:   action,
		Resource: resource,
	}
	return jwt.Signed(signer).Claims(c).Serialize()
}
