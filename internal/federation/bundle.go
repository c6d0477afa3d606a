package federation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Limits on a foreign bundle document. A real one holds a few roots and JWT keys
// (SPIRE: the current and the next of each); these leave room for a long rotation.
const (
	MaxBundleSize     = 128 << 10
	MaxAuthorities    = 64 // X.509 authorities, and separately JWT authorities
	maxRefreshHintSec = 365 * 24 * 3600
)

// Refresh bounds (§4.1: poll at the refresh hint; five minutes when there is none).
const (
	DefaultRefresh = 5 * time.Minute
	MinRefresh     = 30 * time.Second // a foreign endpoint cannot make us poll faster
	MaxRefresh     = time.Hour        // nor slower than hourly
)

// ErrBundle wraps every reason a bundle document is refused.
var ErrBundle = errors.New("federation: bundle refused")

// ParseBundle parses a SPIFFE bundle document (SPIFFE Trust Domain and Bundle §4) for td
// with go-spiffe and refuses what Warden will not hold: more than MaxBundleSize bytes,
// anything but one JSON object, a negative or absurd spiffe_refresh_hint, more than
// MaxAuthorities keys of a kind, and a bundle with no X.509 and no JWT authority. The
// document is not trusted by being parsed: who serves it decides that.
func ParseBundle(td spiffeid.TrustDomain, doc []byte) (*spiffebundle.Bundle, error) {
	if len(doc) > MaxBundleSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBundle, MaxBundleSize)
	}
	var head struct {
		RefreshHint *json.Number `json:"spiffe_refresh_hint"`
		Sequence    *json.Number `json:"spiffe_sequence"`
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrBundle)
	}
	if head.RefreshHint != nil {
		// go-spiffe multiplies the hint into a time.Duration: bound it first so it
		// cannot overflow into a negative wait.
		n, err := head.RefreshHint.Int64()
		if err != nil || n < 0 || n > maxRefreshHintSec {
			return nil, fmt.Errorf("%w: spiffe_refresh_hint %s: want 0..%d seconds", ErrBundle, head.RefreshHint, maxRefreshHintSec)
		}
	}
	b, err := spiffebundle.Parse(td, doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	nx, nj := len(b.X509Authorities()), len(b.JWTAuthorities())
	switch {
	case nx > MaxAuthorities || nj > MaxAuthorities:
		return nil, fmt.Errorf("%w: %d X.509 and %d JWT authorities (at most %d each)", ErrBundle, nx, nj, MaxAuthorities)
	case nx+nj == 0:
		return nil, fmt.Errorf("%w: no X.509 or JWT authority", ErrBundle)
	}
	return b, nil
}

// NextRefresh is how long to wait before fetching a bundle again: its refresh hint,
// DefaultRefresh when it has none, held within [min, MaxRefresh]. min is MinRefresh
// unless the operator configured a smaller floor.
func NextRefresh(b *spiffebundle.Bundle, floor time.Duration) time.Duration {
	if floor <= 0 {
		floor = MinRefresh
	}
	d := DefaultRefresh
	if b != nil {
		if h, ok := b.RefreshHint(); ok && h > 0 {
			d = h
		}
	}
	return min(max(d, floor), MaxRefresh)
}

// Newer reports whether next may replace cur: a bundle whose sequence number is lower
// than the one held is a rollback (§4.2: the sequence number orders bundles); without
// sequence numbers the most recently fetched bundle wins.
func Newer(cur, next *spiffebundle.Bundle) bool {
	if cur == nil {
		return true
	}
	cs, ok1 := cur.SequenceNumber()
	ns, ok2 := next.SequenceNumber()
	return !ok1 || !ok2 || ns >= cs
}
