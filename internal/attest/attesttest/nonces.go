// Package attesttest holds the contract suites that every implementation of an attest
// plugin interface must pass (as storetest does for store.Store): today NonceStore, so a
// store-backed nonce store in the control plane behaves exactly like attest.MemoryNonces.
package attesttest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
)

// NonceStoreFactory returns a fresh, empty store whose nonces live ttl with at most
// maxPending unused nonces per subject.
type NonceStoreFactory func(t *testing.T, ttl time.Duration, maxPending int) attest.NonceStore

// RunNonceStore runs the NonceStore contract.
func RunNonceStore(t *testing.T, newStore NonceStoreFactory) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)

	t.Run("issue-then-consume-once", func(t *testing.T) {
		s := newStore(t, time.Minute, 8)
		ch, err := s.Issue(ctx, "a", now)
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.Nonce) < 16 || ch.Subject != "a" || !ch.IssuedAt.Equal(now) || !ch.ExpiresAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("challenge %+v", ch)
		}
		got, err := s.Consume(ctx, "a", ch.Nonce, now.Add(time.Second))
		if err != nil || !got.IssuedAt.Equal(now) {
			t.Fatalf("consume: %+v %v", got, err)
		}
		if _, err := s.Consume(ctx, "a", ch.Nonce, now.Add(2*time.Second)); !errors.Is(err, attest.ErrNonceUsed) {
			t.Fatalf("second consume: %v, want ErrNonceUsed", err)
		}
	})
	t.Run("nonces-differ", func(t *testing.T) {
		s := newStore(t, time.Minute, 8)
		a, _ := s.Issue(ctx, "a", now)
		b, _ := s.Issue(ctx, "a", now)
		if string(a.Nonce) == string(b.Nonce) {
			t.Fatal("two issues returned the same nonce")
		}
	})
	t.Run("other-subject-refused", func(t *testing.T) {
		s := newStore(t, time.Minute, 8)
		ch, _ := s.Issue(ctx, "a", now)
		if _, err := s.Consume(ctx, "b", ch.Nonce, now); !errors.Is(err, attest.ErrNonceUnknown) {
			t.Fatalf("other subject: %v, want ErrNonceUnknown", err)
		}
		if _, err := s.Consume(ctx, "a", ch.Nonce, now); err != nil {
			t.Fatalf("owner after a foreign attempt: %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		s := newStore(t, time.Minute, 8)
		ch, _ := s.Issue(ctx, "a", now)
		if _, err := s.Consume(ctx, "a", ch.Nonce, now.Add(time.Minute)); !errors.Is(err, attest.ErrNonceExpired) {
			t.Fatalf("at expiry: %v, want ErrNonceExpired", err)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		s := newStore(t, time.Minute, 8)
		if _, err := s.Consume(ctx, "a", make([]byte, 32), now); !errors.Is(err, attest.ErrNonceUnknown) {
			t.Fatalf("never issued: %v, want ErrNonceUnknown", err)
		}
	})
	t.Run("pending-limit", func(t *testing.T) {
		s := newStore(t, time.Minute, 2)
		s.Issue(ctx, "a", now)
		s.Issue(ctx, "a", now)
		if _, err := s.Issue(ctx, "a", now); !errors.Is(err, attest.ErrTooManyChallenges) {
			t.Fatalf("third pending: %v, want ErrTooManyChallenges", err)
		}
		if _, err := s.Issue(ctx, "b", now); err != nil {
			t.Fatalf("other subject blocked: %v", err)
		}
		if _, err := s.Issue(ctx, "a", now.Add(2*time.Minute)); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
	})
	t.Run("concurrent-consume-exactly-once", func(t *testing.T) {
		s := newStore(t, time.Minute, 8)
		ch, _ := s.Issue(ctx, "a", now)
		var ok atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Consume(ctx, "a", ch.Nonce, now); err == nil {
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("%d consumers succeeded, want 1", ok.Load())
		}
	})
}
