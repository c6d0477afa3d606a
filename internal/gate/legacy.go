package gate

import (
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-a2a/warden/internal/gate/legacy"
)

// legacyToken mints the narrow downstream credential of legacy mode: an ES256 JWT
// (RFC 7519) with iss = the gate's SPIFFE ID, sub = the verified caller, aud = the legacy
// system, one action (act) and resource (res), iat/exp with exp - iat = LegacyTTL
// (≤ 60 s) and a 128-bit jti. legacy.Verify checks it on the system's side.
func (g *Gate) legacyToken(peer, action, resource string, now time.Time) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: g.cfg.LegacyKey},
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
			Issuer:   g.cfg.Self.String(),
			Subject:  peer,
			Audience: jwt.Audience{g.cfg.LegacyAudience},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(now.Add(g.cfg.LegacyTTL)),
			ID:       base64.RawURLEncoding.EncodeToString(id[:]),
		},
		Action:   action,
		Resource: resource,
	}
	return jwt.Signed(signer).Claims(c).Serialize()
}
