package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// ActivationStore keeps the credential-activation challenge issued with a nonce until
// the enrollment or renewal that answers it takes it, once. Only the SHA-256 of the
// secret is kept: Take returns it in SecretSHA256, with Secret empty.
type ActivationStore interface {
	// PutActivation records p for nonce until expires; ErrTooManyChallenges when full.
	PutActivation(ctx context.Context, nonce []byte, p PendingActivation, expires time.Time) error
	// TakeActivation returns and forgets the activation of nonce, if one is held and
	// not expired at now.
	TakeActivation(ctx context.Context, nonce []byte, now time.Time) (PendingActivation, bool, error)
}

// hashed returns p with its secret replaced by its SHA-256.
func hashed(p PendingActivation) PendingActivation {
	if p.SecretSHA256 == nil {
		sum := sha256.Sum256(p.Secret)
		p.SecretSHA256 = sum[:]
	}
	p.Secret = nil
	return p
}

// MemoryActivations is the in-process ActivationStore (one control-plane replica).
type MemoryActivations struct {
	max int
	mu  sync.Mutex
	m   map[string]memActivation
}

type memActivation struct {
	p       PendingActivation
	expires time.Time
}

// NewMemoryActivations holds at most max activations (expired ones are dropped first).
func NewMemoryActivations(max int) *MemoryActivations {
	return &MemoryActivations{max: max, m: map[string]memActivation{}}
}

// PutActivation implements ActivationStore.
func (s *MemoryActivations) PutActivation(_ context.Context, nonce []byte, p PendingActivation, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		now := time.Now()
		for k, v := range s.m {
			if now.After(v.expires) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= s.max {
			return ErrTooManyChallenges
		}
	}
	s.m[hex.EncodeToString(nonce)] = memActivation{p: hashed(p), expires: expires}
	return nil
}

// TakeActivation implements ActivationStore.
func (s *MemoryActivations) TakeActivation(_ context.Context, nonce []byte, now time.Time) (PendingActivation, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := hex.EncodeToString(nonce)
	v, ok := s.m[k]
	delete(s.m, k)
	if !ok || !now.Before(v.expires) {
		return PendingActivation{}, false, nil
	}
	return v.p, true, nil
}
