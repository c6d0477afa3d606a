package workload

import (
	"context"
	"sync"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Snapshot is everything the Workload API serves at one moment: the workload's
// X509-SVID, the X.509 and JWT bundles of its own trust domain and of every federated
// one (SPIFFE Workload API §4.6), each keyed by its trust domain.
type Snapshot struct {
	SVID        *x509svid.SVID
	X509Bundles map[spiffeid.TrustDomain]*x509bundle.Bundle
	JWTBundles  map[spiffeid.TrustDomain]*jwtbundle.Bundle
}

// Source is what a Workload API server serves from. Snapshot is called for every
// response; Changed returns a channel that is closed at the next change of the snapshot
// (an SVID rotation, a bundle update), so streams send the new one at once.
type Source interface {
	Snapshot() Snapshot
	Changed() <-chan struct{}
	// FetchJWTSVID returns a JWT-SVID of the workload's identity for audience.
	FetchJWTSVID(ctx context.Context, audience []string) (*jwtsvid.SVID, error)
}

// Notifier is the change broadcast a Source can embed: Notify closes the channel that
// Changed handed out and makes the next one.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// Changed returns a channel closed at the next Notify.
func (n *Notifier) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// Notify wakes every waiter of Changed.
func (n *Notifier) Notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
	}
	n.ch = make(chan struct{})
}
