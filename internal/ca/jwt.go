package ca

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MaxJWTTTL bounds JWT-SVID lifetimes; bearer tokens live shorter than X509-SVIDs. It
// also sets how long a retired JWT key stays published (jwtkeys.go).
const MaxJWTTTL = time.Hour

// SignJWTSVID mints an ES256 JWT-SVID for id and audience with the active JWT key
// (JWT-SVID standard §3: sub is the SPIFFE ID, aud is required, exp is required; the
// header carries the key id that the SPIFFE bundle and the JWKS publish). A non-empty
// issuer is put in iss (OpenID Connect relying parties compare it with the discovery
// document's issuer).
func (c *CA) SignJWTSVID(id spiffeid.ID, audience []string, ttl time.Duration, issuer string) (string, error) {
	if len(audience) == 0 {
		return "", errors.New("ca: a JWT-SVID needs an audience")
	}
	for _, a := range audience {
		if a == "" {
			return "", errors.New("ca: an audience must not be empty")
		}
	}
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	if ttl > MaxJWTTTL {
		return "", fmt.Errorf("ca: JWT-SVID ttl must not exceed %s", MaxJWTTTL)
	}
	if id.TrustDomain() != c.td {
		return "", fmt.Errorf("ca: %s is not in trust domain %s", id, c.td)
	}
	now := c.now()
	k := c.jwt.Load().signer(now)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.key, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("ca: %w", err)
	}
	claims := jwt.Claims{
		Issuer:   issuer,
		Subject:  id.String(),
		Audience: jwt.Audience(audience),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(ttl)),
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("ca: %w", err)
	}
	return tok, nil
}
