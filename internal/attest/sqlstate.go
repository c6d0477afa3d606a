package attest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/warden-a2a/warden/internal/sqlschema"
)

//go:embed schema/sqlite/*.sql schema/postgres/*.sql
var schemaFS embed.FS

// SQLState is a NonceStore and ActivationStore in the control plane's own database
// (attest_* tables), so that a challenge issued by one replica is answered at another,
// and survives a restart. Same semantics as MemoryNonces: a nonce is consumed at most
// once; used nonces are remembered until one ttl past their expiry, so a replay is
// ErrNonceUsed; at most maxPending unused, unexpired nonces per subject.
type SQLState struct {
	db         *sql.DB
	d          sqlschema.Dialect
	ttl        time.Duration
	maxPending int
}

var (
	_ NonceStore      = (*SQLState)(nil)
	_ ActivationStore = (*SQLState)(nil)
)

// NewSQLiteState migrates the attest_* tables in a SQLite database (the control plane's
// file) and returns the store. ttl and maxPending default as in NewMemoryNonces.
func NewSQLiteState(ctx context.Context, db *sql.DB, ttl time.Duration, maxPending int) (*SQLState, error) {
	return newSQLState(ctx, db, sqlschema.SQLite, ttl, maxPending)
}

// NewPostgresState is NewSQLiteState on PostgreSQL (the connection's current schema).
func NewPostgresState(ctx context.Context, db *sql.DB, ttl time.Duration, maxPending int) (*SQLState, error) {
	return newSQLState(ctx, db, sqlschema.Postgres("warden-attest-migrate"), ttl, maxPending)
}

func newSQLState(ctx context.Context, db *sql.DB, d sqlschema.Dialect, ttl time.Duration, maxPending int) (*SQLState, error) {
	if ttl <= 0 {
		ttl = 60 * time.Second
	}
	if maxPending <= 0 {
		maxPending = 16
	}
	if err := sqlschema.Migrate(ctx, db, d, schemaFS, "schema", "attest"); err != nil {
		return nil, err
	}
	return &SQLState{db: db, d: d, ttl: ttl, maxPending: maxPending}, nil
}

func us(t time.Time) int64 { return t.UnixMicro() }

// Issue implements NonceStore.
func (s *SQLState) Issue(ctx context.Context, subject string, now time.Time) (Challenge, error) {
	n := make([]byte, 32)
	if _, err := rand.Read(n); err != nil {
		return Challenge{}, fmt.Errorf("attest: %w", err)
	}
	// Microsecond times, as stored: what Issue returns is what Consume will return.
	now = now.UTC().Truncate(time.Microsecond)
	ch := Challenge{Subject: subject, Nonce: n, IssuedAt: now, ExpiresAt: now.Add(s.ttl)}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Challenge{}, fmt.Errorf("attest: nonce: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if s.d.Dollar { // one subject's issues in turn across replicas: the count below holds
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('warden-attest-nonce:' || $1))", subject); err != nil {
			return Challenge{}, fmt.Errorf("attest: nonce: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.Q("DELETE FROM attest_nonces WHERE expires_at < ?"), us(now.Add(-s.ttl))); err != nil {
		return Challenge{}, fmt.Errorf("attest: nonce: %w", err)
	}
	var open int
	if err := tx.QueryRowContext(ctx, s.d.Q("SELECT COUNT(*) FROM attest_nonces WHERE subject = ? AND used_at = 0 AND expires_at > ?"),
		subject, us(now)).Scan(&open); err != nil {
		return Challenge{}, fmt.Errorf("attest: nonce: %w", err)
	}
	if open >= s.maxPending {
		return Challenge{}, ErrTooManyChallenges
	}
	if _, err := tx.ExecContext(ctx, s.d.Q("INSERT INTO attest_nonces (nonce, subject, issued_at, expires_at) VALUES (?, ?, ?, ?)"),
		hex.EncodeToString(n), subject, us(ch.IssuedAt), us(ch.ExpiresAt)); err != nil {
		return Challenge{}, fmt.Errorf("attest: nonce: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Challenge{}, fmt.Errorf("attest: nonce: %w", err)
	}
	return ch, nil
}

// Consume implements NonceStore. The UPDATE that marks the nonce used matches only an
// unused one, so of concurrent calls from any replicas exactly one gets it.
func (s *SQLState) Consume(ctx context.Context, subject string, nonce []byte, now time.Time) (Challenge, error) {
	key := hex.EncodeToString(nonce)
	res, err := s.db.ExecContext(ctx, s.d.Q("UPDATE attest_nonces SET used_at = ? WHERE nonce = ? AND subject = ? AND used_at = 0"),
		max(us(now), 1), key, subject)
	if err != nil {
		return Challenge{}, fmt.Errorf("attest: nonce: %w", err)
	}
	won, err := res.RowsAffected()
	if err != nil {
		return Challenge{}, fmt.Errorf("attest: nonce: %w", err)
	}
	var who string
	var issued, expires, used int64
	err = s.db.QueryRowContext(ctx, s.d.Q("SELECT subject, issued_at, expires_at, used_at FROM attest_nonces WHERE nonce = ?"), key).
		Scan(&who, &issued, &expires, &used)
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err == nil && who != subject):
		return Challenge{}, ErrNonceUnknown
	case err != nil:
		return Challenge{}, fmt.Errorf("attest: nonce: %w", err)
	case won != 1:
		return Challenge{}, ErrNonceUsed
	}
	ch := Challenge{Subject: who, Nonce: nonce, IssuedAt: time.UnixMicro(issued).UTC(), ExpiresAt: time.UnixMicro(expires).UTC()}
	if !now.Before(ch.ExpiresAt) {
		return Challenge{}, ErrNonceExpired
	}
	return ch, nil
}

// PutActivation implements ActivationStore: the activation rides on its nonce's row.
func (s *SQLState) PutActivation(ctx context.Context, nonce []byte, p PendingActivation, _ time.Time) error {
	p = hashed(p)
	res, err := s.db.ExecContext(ctx, s.d.Q("UPDATE attest_nonces SET secret_sha256 = ?, ek_name = ?, ak_name = ? WHERE nonce = ?"),
		hex.EncodeToString(p.SecretSHA256), p.EKName, p.AKName, hex.EncodeToString(nonce))
	if err != nil {
		return fmt.Errorf("attest: activation: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("attest: activation: nonce %x not issued", nonce)
	}
	return nil
}

// TakeActivation implements ActivationStore. The clearing UPDATE matches the hash it
// read, so of concurrent takers from any replicas exactly one gets the activation.
func (s *SQLState) TakeActivation(ctx context.Context, nonce []byte, now time.Time) (PendingActivation, bool, error) {
	key := hex.EncodeToString(nonce)
	var h, ek, ak string
	err := s.db.QueryRowContext(ctx, s.d.Q("SELECT secret_sha256, ek_name, ak_name FROM attest_nonces WHERE nonce = ? AND secret_sha256 <> '' AND expires_at > ?"),
		key, us(now)).Scan(&h, &ek, &ak)
	if errors.Is(err, sql.ErrNoRows) {
		return PendingActivation{}, false, nil
	}
	if err != nil {
		return PendingActivation{}, false, fmt.Errorf("attest: activation: %w", err)
	}
	res, err := s.db.ExecContext(ctx, s.d.Q("UPDATE attest_nonces SET secret_sha256 = '' WHERE nonce = ? AND secret_sha256 = ?"), key, h)
	if err != nil {
		return PendingActivation{}, false, fmt.Errorf("attest: activation: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return PendingActivation{}, false, err // another replica took it
	}
	sum, err := hex.DecodeString(h)
	if err != nil || len(sum) != 32 {
		return PendingActivation{}, false, fmt.Errorf("attest: activation: stored hash %q", h)
	}
	return PendingActivation{SecretSHA256: sum, EKName: ek, AKName: ak}, true, nil
}
