package sdk

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// HeaderPeerID is the header in which the agent's inbound Warden gate names the caller
// it verified (mTLS X509-SVID and signed intent). The gate removes every spelling of it
// that arrives from outside and sets it after hop-by-hop processing, so an agent
// reachable only through its gate (a unix socket, docs/gate.md) can trust it.
const HeaderPeerID = "Warden-Peer-Id"

// ErrNoVerifiedCaller: the request carries no single, well-formed Warden-Peer-Id, so it
// did not come through a Warden gate (or came through something that tampered with it).
var ErrNoVerifiedCaller = errors.New("sdk: no verified caller")

// VerifiedCaller returns the SPIFFE ID of the caller that the agent's inbound gate
// verified for r. It returns an error wrapping ErrNoVerifiedCaller when Warden-Peer-Id
// is absent, appears more than once, is not a SPIFFE ID, or when another spelling of it
// (warden_peer_id, as CGI and WSGI servers merge) is present: the gate never sends one.
func VerifiedCaller(r *http.Request) (spiffeid.ID, error) {
	vals := r.Header.Values(HeaderPeerID)
	for k := range r.Header {
		if k != HeaderPeerID && strings.EqualFold(strings.ReplaceAll(k, "_", "-"), HeaderPeerID) {
			return spiffeid.ID{}, fmt.Errorf("%w: a header %q beside %s", ErrNoVerifiedCaller, k, HeaderPeerID)
		}
	}
	switch len(vals) {
	case 0:
		return spiffeid.ID{}, fmt.Errorf("%w: no %s header", ErrNoVerifiedCaller, HeaderPeerID)
	case 1:
	default:
		return spiffeid.ID{}, fmt.Errorf("%w: %d %s headers", ErrNoVerifiedCaller, len(vals), HeaderPeerID)
	}
	id, err := spiffeid.FromString(vals[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("%w: %s: %v", ErrNoVerifiedCaller, HeaderPeerID, err)
	}
	return id, nil
}
