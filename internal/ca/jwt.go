package ca

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MaxJWTTTL bounds JWT-SVID lifetimes; bearer tokens live shorter than X509-SVIDs.
const MaxJWTTTL = time.Hour

// SignJWTSVID mints an ES256 JWT-SVID for id and audience (JWT-SVID standard §3: sub is
// the SPIFFE ID, aud is required, exp is required; the header carries the key id that the
// SPIFFE bundle publishes with use "jwt-svid").
func (c *CA) SignJWTSVID(id spiffeid.ID, audience []string, ttl time.Duration) (string, error) {
	if len(audience) == 0 {
		return "", errors.New("ca: a JWT-SVID needs an audience")
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
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: c.jwtKey, KeyID: c.jwtKID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("ca: %w", err)
	}
	now := c.now()
	claims := jwt.Claims{
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
