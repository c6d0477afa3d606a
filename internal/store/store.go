// Package store defines the persistence interface of the Warden control plane: registration
// entries, one-time join tokens (only their hashes), issued SVIDs and the signed trust-state
// document. Backends live in sub-packages (sqlite, the embedded default; postgres, for
// several server replicas) and all pass the conformance suite in storetest.
//
// Every method is safe for concurrent use, including from several processes sharing one
// database (PostgreSQL replicas, or two warden processes on one SQLite file).
package store

import (
	"context"
	"errors"
	"time"
)

// Errors callers tell apart with errors.Is.
var (
	// ErrNotFound: the entry, token, SVID or trust state does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: an entry with that name, a token with that hash or an SVID with that
	// serial already exists.
	ErrExists = errors.New("store: already exists")
	// ErrTokenUsed: ConsumeJoinToken found the token already consumed.
	ErrTokenUsed = errors.New("store: join token already used")
	// ErrTokenExpired: ConsumeJoinToken found the token past its expiry.
	ErrTokenExpired = errors.New("store: join token expired")
	// ErrConflict: PutTrustState was given a version other than latest+1 (another replica
	// won the race); re-read and retry.
	ErrConflict = errors.New("store: version conflict")
)

// Entry is a registration entry: one agent identity and its attributes.
type Entry struct {
	Name      string // unique, [a-z0-9-]{1,63}
	SPIFFEID  string // spiffe://TRUST_DOMAIN/agent/NAME
	Role      string
	Class     string // read-only | advisory | transactional | regulated
	Zone      string
	CreatedAt time.Time
	// Attrs holds further attributes as JSON (reference values for attestation, owner,
	// partner domain, ...). Opaque to the store; nil and empty are equal.
	Attrs []byte
}

// JoinToken is a one-time enrollment credential. Only the SHA-256 of the secret is stored.
type JoinToken struct {
	Hash      []byte // SHA-256 of the token secret, 32 bytes
	EntryName string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
}

// SVID records one issued X.509 SVID.
type SVID struct {
	Serial    string // lower-case hex of the certificate serial number
	SPIFFEID  string
	EntryName string
	Kind      string // "enroll" | "renew" | "recover" | "server" | "admin"
	NotBefore time.Time
	NotAfter  time.Time
	IssuedAt  time.Time
}

// TrustState is one version of the signed trust-state document.
type TrustState struct {
	Version   int64  // 1, 2, 3, ... strictly increasing by one
	Signed    []byte // the signed document exactly as served to gates
	CreatedAt time.Time
}

// Event is an audit event staged in the transactional outbox: every write method takes
// events that are committed in the same transaction as the write, or not at all (nothing
// is staged when the write returns any error, ErrExists and ErrNotFound included). The
// control plane appends them to its audit log afterwards and deletes them with
// DeleteEvents; whatever a crash left staged it appends at its next start
// (PendingEvents). So a state change never exists without the event that records it.
type Event struct {
	ID   string // the event's id, unique
	Data []byte // its canonical bytes (audit.Event.Canonical)
}

// Store is the control plane's persistence. Implementations must pass storetest.Run.
// The events of a write are staged as Event says.
type Store interface {
	// CreateEntry adds e; ErrExists if the name or SPIFFE ID is taken.
	CreateEntry(ctx context.Context, e Entry, events ...Event) error
	// GetEntry returns the entry by name, or ErrNotFound.
	GetEntry(ctx context.Context, name string) (Entry, error)
	// GetEntryBySPIFFEID returns the entry by SPIFFE ID, or ErrNotFound.
	GetEntryBySPIFFEID(ctx context.Context, id string) (Entry, error)
	// ListEntries returns all entries ordered by name.
	ListEntries(ctx context.Context) ([]Entry, error)
	// UpdateEntryAttrs replaces the Attrs of an entry; ErrNotFound if absent.
	UpdateEntryAttrs(ctx context.Context, name string, attrs []byte, events ...Event) error
	// DeleteEntry removes the entry and all its join tokens; ErrNotFound if absent.
	DeleteEntry(ctx context.Context, name string, events ...Event) error

	// CreateJoinToken stores t (UsedAt must be zero); ErrNotFound if the entry does not
	// exist, ErrExists if the hash is taken.
	CreateJoinToken(ctx context.Context, t JoinToken, events ...Event) error
	// ConsumeJoinToken atomically marks the token with this hash used at now and returns
	// it. Exactly one of any number of concurrent callers succeeds. ErrNotFound if no
	// such token (or its entry was deleted), ErrTokenUsed if already used,
	// ErrTokenExpired if now is not before ExpiresAt (an expired token is not consumed).
	ConsumeJoinToken(ctx context.Context, hash []byte, now time.Time) (JoinToken, error)

	// RecordSVID stores an issued SVID; ErrExists on a duplicate serial.
	RecordSVID(ctx context.Context, s SVID, events ...Event) error
	// GetSVID returns the SVID by serial, or ErrNotFound.
	GetSVID(ctx context.Context, serial string) (SVID, error)
	// CountSVIDs returns how many SVIDs were recorded for the SPIFFE ID.
	CountSVIDs(ctx context.Context, spiffeID string) (int, error)
	// LatestSVID returns the SVID recorded for the SPIFFE ID with the latest NotBefore
	// (ties: latest IssuedAt, then highest serial), or ErrNotFound. Recovery of an expired
	// SVID accepts only that one (docs/identity.md, "Recovery").
	LatestSVID(ctx context.Context, spiffeID string) (SVID, error)

	// LatestTrustState returns the highest version, or ErrNotFound when none exists.
	LatestTrustState(ctx context.Context) (TrustState, error)
	// PutTrustState stores ts. ts.Version must be exactly latest+1 (1 when none exists);
	// otherwise ErrConflict and nothing is written.
	PutTrustState(ctx context.Context, ts TrustState, events ...Event) error

	// PendingEvents returns up to limit staged events (limit <= 0: 100), oldest first.
	PendingEvents(ctx context.Context, limit int) ([]Event, error)
	// DeleteEvents removes staged events by id once they are in the audit log; ids not
	// staged are ignored.
	DeleteEvents(ctx context.Context, ids []string) error

	// Close releases the backend.
	Close() error
}
