package attest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/attest"
	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/store/storetest"
)

// state is one backend of the attestation state as two replicas see it: a and b share
// what they hold (for memory, one process: the same values).
type state struct {
	a, b   attest.NonceStore
	aa, ba attest.ActivationStore
}

// backends returns the NonceStore / ActivationStore implementations with ttl 1 min and
// at most 2 outstanding nonces per subject.
func backends() map[string]func(t *testing.T) state {
	sqlPair := func(t *testing.T, open func(t *testing.T) *sql.DB, mk func(context.Context, *sql.DB, time.Duration, int) (*attest.SQLState, error)) state {
		s1, err := mk(context.Background(), open(t), time.Minute, 2)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := mk(context.Background(), open(t), time.Minute, 2)
		if err != nil {
			t.Fatal(err)
		}
		return state{a: s1, b: s2, aa: s1, ba: s2}
	}
	return map[string]func(t *testing.T) state{
		"memory": func(t *testing.T) state {
			n, a := attest.NewMemoryNonces(time.Minute, 2), attest.NewMemoryActivations(100)
			return state{a: n, b: n, aa: a, ba: a}
		},
		"sqlite": func(t *testing.T) state {
			path := filepath.Join(t.TempDir(), "warden.db")
			return sqlPair(t, func(t *testing.T) *sql.DB { // two handles on one file, as two processes
				st, err := sqlite.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st.DB()
			}, attest.NewSQLiteState)
		},
		"postgres": func(t *testing.T) state {
			dsn := storetest.PostgresDSN(t)
			return sqlPair(t, func(t *testing.T) *sql.DB { // two pools on one schema, as two replicas
				st, err := postgres.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st.DB()
			}, attest.NewPostgresState)
		},
	}
}

// TestNonceStoreReasons: a nonce issued at one replica is consumed at the other; consumed
// again it is quote_replay, expired stale_evidence, issued to another agent or never
// issued quote_replay; at most 2 outstanding per subject, expiry frees the budget.
func TestNonceStoreReasons(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			now := time.Unix(1_800_000_000, 0)
			ch, err := s.a.Issue(ctx, "a", now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.b.Consume(ctx, "b", ch.Nonce, now); attest.ReasonForNonceError(err) != attest.ReasonQuoteReplay {
				t.Fatalf("other subject: %v", err)
			}
			got, err := s.b.Consume(ctx, "a", ch.Nonce, now)
			if err != nil || !bytes.Equal(got.Nonce, ch.Nonce) || !got.ExpiresAt.Equal(ch.ExpiresAt) || got.Subject != "a" {
				t.Fatalf("consume at the other replica: %+v %v", got, err)
			}
			if _, err := s.a.Consume(ctx, "a", ch.Nonce, now); !errors.Is(err, attest.ErrNonceUsed) {
				t.Fatalf("reuse: %v", err)
			}
			ch2, _ := s.a.Issue(ctx, "a", now)
			if _, err := s.b.Consume(ctx, "a", ch2.Nonce, now.Add(2*time.Minute)); attest.ReasonForNonceError(err) != attest.ReasonStaleEvidence {
				t.Fatalf("expired: %v", err)
			}
			if _, err := s.a.Consume(ctx, "a", []byte("never issued never issued never!"), now); !errors.Is(err, attest.ErrNonceUnknown) {
				t.Fatalf("unknown: %v", err)
			}
			_, _ = s.a.Issue(ctx, "c", now)
			_, _ = s.b.Issue(ctx, "c", now)
			if _, err := s.a.Issue(ctx, "c", now); !errors.Is(err, attest.ErrTooManyChallenges) {
				t.Fatalf("third outstanding across replicas: %v", err)
			}
			if _, err := s.b.Issue(ctx, "c", now.Add(2*time.Minute)); err != nil {
				t.Fatalf("after expiry: %v", err)
			}
		})
	}
}

// issued opens a backend and issues one nonce to subject "a" at replica a.
func issued(t *testing.T, open func(t *testing.T) state, now time.Time) (state, attest.Challenge) {
	s := open(t)
	ch, err := s.a.Issue(context.Background(), "a", now)
	if err != nil {
		t.Fatal(err)
	}
	return s, ch
}

// TestNonceConsumedOnce: of concurrent consumers at both replicas, exactly one wins.
func TestNonceConsumedOnce(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx, now := context.Background(), time.Now()
			s, ch := issued(t, open, now)
			var won atomic.Int32
			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st := s.a
					if i%2 == 1 {
						st = s.b
					}
					if _, err := st.Consume(ctx, "a", ch.Nonce, now); err == nil {
						won.Add(1)
					} else if !errors.Is(err, attest.ErrNonceUsed) {
						t.Errorf("consume: %v", err)
					}
				}()
			}
			wg.Wait()
			if won.Load() != 1 {
				t.Fatalf("%d consumers won", won.Load())
			}
		})
	}
}

// TestActivationStore: the activation put at one replica is taken once at the other, as
// the hash of its secret; not after expiry, not for another nonce.
func TestActivationStore(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx, now := context.Background(), time.Now()
			s, ch := issued(t, open, now)
			secret := []byte("0123456789abcdef0123456789abcdef")
			if err := s.aa.PutActivation(ctx, ch.Nonce, attest.PendingActivation{Secret: secret, EKName: "ek", AKName: "ak"}, ch.ExpiresAt); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := s.ba.TakeActivation(ctx, []byte("another nonce another nonce 1234"), now); ok || err != nil {
				t.Fatalf("another nonce: %v %v", ok, err)
			}
			p, ok, err := s.ba.TakeActivation(ctx, ch.Nonce, now)
			sum := sha256.Sum256(secret)
			if err != nil || !ok || !bytes.Equal(p.SecretSHA256, sum[:]) || len(p.Secret) != 0 || p.EKName != "ek" || p.AKName != "ak" {
				t.Fatalf("take: %+v %v %v", p, ok, err)
			}
			if _, ok, _ := s.aa.TakeActivation(ctx, ch.Nonce, now); ok {
				t.Fatal("taken twice")
			}
			ch2, _ := s.a.Issue(ctx, "a", now)
			_ = s.aa.PutActivation(ctx, ch2.Nonce, attest.PendingActivation{Secret: secret}, ch2.ExpiresAt)
			if _, ok, _ := s.ba.TakeActivation(ctx, ch2.Nonce, now.Add(2*time.Minute)); ok {
				t.Fatal("taken after expiry")
			}
		})
	}
}
