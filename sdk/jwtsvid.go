package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/warden-a2a/warden/internal/api"
)

// FetchJWTSVID asks the control plane for a JWT-SVID of this source's identity for
// audience, authenticated by the current X509-SVID (POST /v1/jwt-svid). ttl 0 takes the
// control plane's default (5 min); at most 1 h. The token's claims are read, not
// verified: it came over mTLS from the control plane itself. Verifiers use the JWKS or
// the SPIFFE bundle (docs/identity.md).
func (s *Source) FetchJWTSVID(ctx context.Context, audience []string, ttl time.Duration) (*jwtsvid.SVID, error) {
	if len(audience) == 0 {
		return nil, errors.New("sdk: a JWT-SVID needs an audience")
	}
	var resp api.JWTSVIDResponse
	req := api.JWTSVIDRequest{Audience: audience, TTLSec: int(ttl / time.Second)}
	if err := postJSON(ctx, s.client, strings.TrimRight(s.cfg.ServerURL, "/")+api.PathJWTSVID, req, &resp); err != nil {
		return nil, err
	}
	sv, err := jwtsvid.ParseInsecure(resp.Token, audience)
	if err != nil {
		return nil, fmt.Errorf("sdk: control plane answered with an unusable JWT-SVID: %w", err)
	}
	if me, _ := s.GetX509SVID(); sv.ID != me.ID {
		return nil, fmt.Errorf("sdk: JWT-SVID for %s, expected %s", sv.ID, me.ID)
	}
	return sv, nil
}
