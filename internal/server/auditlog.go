package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/sqlite"
)

// AuditOptions configures OpenAuditWith.
type AuditOptions struct {
	// CheckpointInterval: sign a checkpoint this often (and at start and stop), and have
	// the witnesses cosign it; 0 means only on demand.
	CheckpointInterval time.Duration
	// Witnesses cosign every checkpoint (internal/witness clients).
	Witnesses []audit.Cosigner
	Logger    *slog.Logger
}

// OpenAudit is OpenAuditWith with a checkpoint interval and no witnesses.
func OpenAudit(ctx context.Context, st store.Store, dataDir, trustDomain string, interval time.Duration, log *slog.Logger) (*audit.Log, error) {
	return OpenAuditWith(ctx, st, dataDir, trustDomain, AuditOptions{CheckpointInterval: interval, Logger: log})
}

// OpenAuditWith opens the audit log in the store's own database (tables audit_*), with
// the checkpoint signer key in DATA_DIR/audit (created on first use) and a signed
// checkpoint every interval. The store must be the SQLite or PostgreSQL backend.
//
// Every replica of one database must sign with one key: when the database already has
// checkpoints and DATA_DIR/audit has no key, or a key that did not sign them, it refuses
// to start (copy DATA_DIR/audit from the server that made them), instead of starting a
// second key that verify would not know.
func OpenAuditWith(ctx context.Context, st store.Store, dataDir, trustDomain string, o AuditOptions) (*audit.Log, error) {
	var storage audit.Storage
	var err error
	switch b := st.(type) {
	case *sqlite.Store:
		storage, err = audit.NewSQLite(ctx, b.DB())
	case *postgres.Store:
		storage, err = audit.NewPostgres(ctx, b.DB())
	default:
		return nil, fmt.Errorf("server: audit log: store %T has no SQL database", st)
	}
	if err != nil {
		return nil, err
	}
	keyDir := filepath.Join(dataDir, "audit")
	latest, lerr := storage.LatestCheckpoint(ctx)
	if lerr != nil && !errors.Is(lerr, audit.ErrNotFound) {
		return nil, lerr
	}
	if _, err := os.Stat(filepath.Join(keyDir, audit.SignerKeyFile)); errors.Is(err, os.ErrNotExist) && lerr == nil {
		return nil, fmt.Errorf("server: the audit log in this database has signed checkpoints but %s has no key: copy DATA_DIR/audit/ from the server that signed them (replicas share one audit key, like DATA_DIR/ca/)", keyDir)
	}
	signer, verifier, err := audit.LoadOrCreateKeys(keyDir, audit.NoteName(trustDomain))
	if err != nil {
		return nil, err
	}
	if lerr == nil {
		if _, _, err := audit.OpenCheckpoint(latest.Note, verifier); err != nil {
			return nil, fmt.Errorf("server: the newest audit checkpoint in this database (size %d) is not signed by the key in %s: copy DATA_DIR/audit/ from the server that signed it (replicas share one audit key, like DATA_DIR/ca/): %w", latest.Size, keyDir, err)
		}
	}
	return audit.Open(ctx, audit.Config{Storage: storage, Signer: signer, CheckpointInterval: o.CheckpointInterval,
		Witnesses: o.Witnesses, Logger: o.Logger})
}
