package attest

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Challenge is one issued nonce.
type Challenge struct {
	Subject   string    `json:"subject"` // the agent (SPIFFE ID or entry name) it was issued to
	Nonce     []byte    `json:"nonce"`   // 32 random bytes
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Errors of NonceStore.Consume; ReasonForNonceError maps them to reason codes.
var (
	// ErrNonceUnknown: never issued, issued to another subject, or already forgotten.
	ErrNonceUnknown = errors.New("attest: nonce unknown")
	// ErrNonceUsed: issued and already consumed once.
	ErrNonceUsed = errors.New("attest: nonce already used")
	// ErrNonceExpired: issued, unused, past its expiry.
	ErrNonceExpired = errors.New("attest: nonce expired")
	// ErrTooManyChallenges: the subject has too many outstanding challenges.
	ErrTooManyChallenges = errors.New("attest: too many outstanding challenges")
)

// ReasonForNonceError maps a Consume error to its refusal reason: an expired nonce is
// stale_evidence, any other failure (unknown, reused, wrong subject) is quote_replay.
func ReasonForNonceError(err error) Reason {
	switch {
	case err == nil:
		return ReasonNone
	case errors.Is(err, ErrNonceExpired):
		return ReasonStaleEvidence
	default:
		return ReasonQuoteReplay
	}
}

// NonceStore issues single-use, expiring challenge nonces. MemoryNonces is the in-process
// implementation; the control plane may back one by its store (several replicas).
type NonceStore interface {
	// Issue makes a fresh nonce for subject.
	Issue(ctx context.Context, subject string, now time.Time) (Challenge, error)
	// Consume marks the nonce used and returns its challenge: ErrNonceUnknown,
	// ErrNonceUsed or ErrNonceExpired otherwise. A nonce is consumed at most once.
	Consume(ctx context.Context, subject string, nonce []byte, now time.Time) (Challenge, error)
}

// MemoryNonces is an in-memory NonceStore. Used nonces are remembered until they would
// have expired, so a replay is reported as ErrNonceUsed rather than ErrNonceUnknown.
type MemoryNonces struct {
	ttl        time.Duration
	maxPending int

	mu      sync.Mutex
	entries map[string]*nonceEntry // key: hex nonce
	pending map[string]int         // subject -> outstanding unused
	sweepAt time.Time
}

type nonceEntry struct {
	ch       Challenge
	used     bool
	released bool // no longer counted in pending (used or expired)
}

var _ NonceStore = (*MemoryNonces)(nil)

// NewMemoryNonces returns a store whose nonces live ttl (default 60 s) with at most
// maxPending (default 16) unused nonces per subject.
func NewMemoryNonces(ttl time.Duration, maxPending int) *MemoryNonces {
	if ttl <= 0 {
		ttl = 60 * time.Second
	}
	if maxPending <= 0 {
		maxPending = 16
	}
	return &MemoryNonces{ttl: ttl, maxPending: maxPending,
		entries: map[string]*nonceEntry{}, pending: map[string]int{}}
}

// Issue implements NonceStore.
func (m *MemoryNonces) Issue(_ context.Context, subject string, now time.Time) (Challenge, error) {
	n := make([]byte, 32)
	if _, err := rand.Read(n); err != nil {
		return Challenge{}, fmt.Errorf("attest: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	if m.pending[subject] >= m.maxPending {
		return Challenge{}, ErrTooManyChallenges
	}
	ch := Challenge{Subject: subject, Nonce: n, IssuedAt: now, ExpiresAt: now.Add(m.ttl)}
	m.entries[hex.EncodeToString(n)] = &nonceEntry{ch: ch}
	m.pending[subject]++
	return ch, nil
}

// Consume implements NonceStore.
func (m *MemoryNonces) Consume(_ context.Context, subject string, nonce []byte, now time.Time) (Challenge, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[hex.EncodeToString(nonce)]
	if !ok || subtle.ConstantTimeCompare([]byte(e.ch.Subject), []byte(subject)) != 1 {
		return Challenge{}, ErrNonceUnknown
	}
	if e.used {
		return Challenge{}, ErrNonceUsed
	}
	e.used = true
	if !e.released {
		e.released = true
		m.pending[subject]--
	}
	if !now.Before(e.ch.ExpiresAt) {
		return Challenge{}, ErrNonceExpired
	}
	return e.ch, nil
}

// sweepLocked forgets entries one ttl past their expiry, at most once per ttl/4.
func (m *MemoryNonces) sweepLocked(now time.Time) {
	if now.Before(m.sweepAt) {
		return
	}
	m.sweepAt = now.Add(m.ttl / 4)
	for k, e := range m.entries {
		if now.After(e.ch.ExpiresAt.Add(m.ttl)) {
			if !e.released {
				m.pending[e.ch.Subject]--
			}
			delete(m.entries, k)
		} else if !e.released && !now.Before(e.ch.ExpiresAt) {
			// expired but unused: no longer counts against the subject's budget
			e.released = true
			m.pending[e.ch.Subject]--
		}
	}
	for s, n := range m.pending {
		if n <= 0 {
			delete(m.pending, s)
		}
	}
}
