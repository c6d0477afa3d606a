package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// dialect holds what differs between SQLite and PostgreSQL.
type dialect struct {
	name   string
	blob   string           // column type of byte strings
	ph     func(int) string // placeholder of the i-th (1-based) argument
	schema []string
	// begin starts the writer's transaction on conn, holding the log's write lock.
	begin func(ctx context.Context, conn *sql.Conn) error
}

const schemaVersion = 1

func schemaFor(blob, bigint string) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS audit_schema (version ` + bigint + ` NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS audit_records (
			idx      ` + bigint + ` PRIMARY KEY,
			id       TEXT NOT NULL UNIQUE,
			kind     TEXT NOT NULL,
			time_ns  ` + bigint + ` NOT NULL,
			workflow TEXT NOT NULL,
			caller   TEXT NOT NULL,
			callee   TEXT NOT NULL,
			decision TEXT NOT NULL,
			data     ` + blob + ` NOT NULL,
			hashes   ` + blob + ` NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS audit_checkpoints (
			size    ` + bigint + ` PRIMARY KEY,
			root    ` + blob + ` NOT NULL,
			note    ` + blob + ` NOT NULL,
			time_ns ` + bigint + ` NOT NULL)`,
	}
}

var sqliteDialect = dialect{
	name:   "sqlite",
	blob:   "BLOB",
	ph:     func(int) string { return "?" },
	schema: schemaFor("BLOB", "INTEGER"),
	begin: func(ctx context.Context, c *sql.Conn) error {
		// synchronous=FULL: a commit is on disk (fsync of the WAL) before it returns.
		// busy_timeout: wait for another process's writer instead of failing.
		for _, q := range []string{"PRAGMA synchronous=FULL", "PRAGMA busy_timeout=10000", "BEGIN IMMEDIATE"} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	},
}

// pgLockKey is the pg_advisory_xact_lock key of the audit log writer ("wardaudt").
const pgLockKey = 0x7761726461756474

var postgresDialect = dialect{
	name:   "postgres",
	blob:   "BYTEA",
	ph:     func(i int) string { return "$" + strconv.Itoa(i) },
	schema: schemaFor("BYTEA", "BIGINT"),
	begin: func(ctx context.Context, c *sql.Conn) error {
		if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
			return err
		}
		_, err := c.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(pgLockKey))
		return err
	},
}

// NewSQLite returns the Storage on an open modernc.org/sqlite database (driver "sqlite"),
// creating or migrating the audit_* tables and switching the file to WAL mode.
func NewSQLite(ctx context.Context, db *sql.DB) (Storage, error) {
	if _, err := db.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
		return nil, fmt.Errorf("audit: sqlite WAL: %w", err)
	}
	return newSQLStorage(ctx, db, sqliteDialect)
}

// NewPostgres returns the Storage on an open PostgreSQL database (pgx stdlib, driver
// "pgx"), creating or migrating the audit_* tables.
func NewPostgres(ctx context.Context, db *sql.DB) (Storage, error) {
	return newSQLStorage(ctx, db, postgresDialect)
}

type sqlStorage struct {
	db *sql.DB
	d  dialect

	mu       sync.Mutex
	frontier map[int64]tlog.Hash // stored hashes a next append needs; immutable values
}

func newSQLStorage(ctx context.Context, db *sql.DB, d dialect) (*sqlStorage, error) {
	s := &sqlStorage{db: db, d: d, frontier: map[int64]tlog.Hash{}}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("audit: migrate %s: %w", d.name, err)
	}
	return s, nil
}

func (s *sqlStorage) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := s.d.begin(ctx, conn); err != nil {
		return err
	}
	err = func() error {
		for _, q := range s.d.schema {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		var v int64
		switch err := conn.QueryRowContext(ctx, "SELECT version FROM audit_schema").Scan(&v); {
		case errors.Is(err, sql.ErrNoRows):
			_, err = conn.ExecContext(ctx, "INSERT INTO audit_schema (version) VALUES ("+s.d.ph(1)+")", schemaVersion)
			return err
		case err != nil:
			return err
		case v > schemaVersion:
			return fmt.Errorf("schema version %d is newer than this binary's %d", v, schemaVersion)
		}
		return nil // v == 1: nothing to migrate yet
	}()
	return finish(ctx, conn, err)
}

// finish commits when err is nil and rolls back otherwise.
func finish(ctx context.Context, conn *sql.Conn, err error) error {
	if err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	if _, err = conn.ExecContext(ctx, "COMMIT"); err != nil {
		// A failed COMMIT can leave the transaction open (SQLite BUSY); never hand the
		// connection back to the pool inside it.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	}
	return err
}

func (s *sqlStorage) placeholders(start, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.d.ph(start + i))
	}
	return b.String()
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func (s *sqlStorage) AppendBatch(ctx context.Context, entries []Entry) ([]Result, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: append: %w", err)
	}
	defer conn.Close()
	// Optimistically skip the look-up of already logged ids; a unique-constraint
	// violation (a re-shipped batch) rolls back and retries with the look-up.
	var (
		res     []Result
		pending map[int64]tlog.Hash
		size    int64
	)
	for _, lookup := range []bool{false, true} {
		if err := s.d.begin(ctx, conn); err != nil {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			return nil, fmt.Errorf("audit: append: begin: %w", err)
		}
		res, pending, size, err = s.appendTx(ctx, conn, entries, lookup)
		err = finish(ctx, conn, err)
		if err == nil || lookup || !isUniqueViolation(err) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("audit: append: %w", err)
	}
	s.keepFrontier(size, pending)
	return res, nil
}

// isUniqueViolation reports a duplicate id (SQLite "UNIQUE constraint failed",
// PostgreSQL SQLSTATE 23505).
func isUniqueViolation(err error) bool {
	m := err.Error()
	return strings.Contains(m, "UNIQUE constraint failed") || strings.Contains(m, "23505")
}

func (s *sqlStorage) appendTx(ctx context.Context, conn *sql.Conn, entries []Entry, lookup bool) ([]Result, map[int64]tlog.Hash, int64, error) {
	var size int64
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(idx)+1, 0) FROM audit_records").Scan(&size); err != nil {
		return nil, nil, 0, err
	}
	// Ids already stored (idempotent re-append) and repeated inside the batch.
	existing := map[string]Record{}
	ids := make([]any, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	for start := 0; lookup && start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		rows, err := conn.QueryContext(ctx, "SELECT idx, id, data FROM audit_records WHERE id IN ("+s.placeholders(1, len(chunk))+")", chunk...)
		if err != nil {
			return nil, nil, 0, err
		}
		for rows.Next() {
			var r Record
			if err := rows.Scan(&r.Index, &r.ID, &r.Data); err != nil {
				rows.Close()
				return nil, nil, 0, err
			}
			existing[r.ID] = r
		}
		if err := rows.Close(); err != nil {
			return nil, nil, 0, err
		}
	}

	pending := map[int64]tlog.Hash{}
	s.mu.Lock()
	frontier := s.frontier
	s.mu.Unlock()
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		var miss []int64
		for i, x := range idx {
			if h, ok := pending[x]; ok {
				out[i] = h
			} else if h, ok := frontier[x]; ok {
				out[i] = h
			} else {
				miss = append(miss, x)
			}
		}
		if len(miss) == 0 {
			return out, nil
		}
		got, err := s.readHashes(ctx, conn, miss)
		if err != nil {
			return nil, err
		}
		m := make(map[int64]tlog.Hash, len(miss))
		for i, x := range miss {
			m[x] = got[i]
		}
		for i, x := range idx {
			if h, ok := m[x]; ok {
				out[i] = h
			}
		}
		return out, nil
	})

	res := make([]Result, len(entries))
	var recs []Record
	var recHashes [][]byte
	n := size
	for i, e := range entries {
		if r, ok := existing[e.ID]; ok {
			res[i].Index = r.Index
			if string(r.Data) != string(e.Data) {
				res[i].Err = ErrConflict
			}
			continue
		}
		leaf := e.leaf
		if !e.hashed {
			leaf = tlog.RecordHash(e.Data)
		}
		hs, err := tlog.StoredHashesForRecordHash(n, leaf, reader)
		if err != nil {
			return nil, nil, 0, err
		}
		base := tlog.StoredHashIndex(0, n)
		blob := make([]byte, 0, len(hs)*tlog.HashSize)
		for j, h := range hs {
			pending[base+int64(j)] = h
			blob = append(blob, h[:]...)
		}
		existing[e.ID] = Record{Index: n, Entry: e}
		recs = append(recs, Record{Index: n, Entry: e})
		recHashes = append(recHashes, blob)
		res[i].Index = n
		n++
	}
	if err := s.insertRecords(ctx, conn, recs, recHashes); err != nil {
		return nil, nil, 0, err
	}
	return res, pending, n, nil
}

func (s *sqlStorage) insertRecords(ctx context.Context, conn *sql.Conn, recs []Record, hashes [][]byte) error {
	const cols = 10
	for start := 0; start < len(recs); start += 100 {
		chunk := recs[start:min(start+100, len(recs))]
		var q strings.Builder
		q.WriteString("INSERT INTO audit_records (" + recordCols + ") VALUES ")
		args := make([]any, 0, len(chunk)*cols)
		for i, r := range chunk {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(" + s.placeholders(i*cols+1, cols) + ")")
			args = append(args, r.Index, r.ID, string(r.Kind), r.Time.UnixNano(), r.Workflow, r.Caller, r.Callee, r.Decision, r.Data, hashes[start+i])
		}
		if _, err := conn.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// keepFrontier keeps, out of the hashes just committed, those the next append reads: the
// roots of the complete subtrees on the right edge of a tree of size n.
func (s *sqlStorage) keepFrontier(n int64, pending map[int64]tlog.Hash) {
	next := map[int64]tlog.Hash{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := 0; l < 63 && n>>l > 0; l++ {
		if (n>>l)&1 == 0 {
			continue
		}
		x := tlog.StoredHashIndex(l, (n>>l)-1)
		if h, ok := pending[x]; ok {
			next[x] = h
		} else if h, ok := s.frontier[x]; ok {
			next[x] = h
		}
	}
	s.frontier = next
}

// readHashes reads stored hashes: the hash at stored index x, a node at level l, is kept
// in the hashes column of the record that completed that node, at offset l.
func (s *sqlStorage) readHashes(ctx context.Context, q queryer, indexes []int64) ([]tlog.Hash, error) {
	type loc struct {
		rec   int64
		level int
	}
	locs := make([]loc, len(indexes))
	recSet := map[int64]bool{}
	var recIdx []int64
	for i, x := range indexes {
		level, n := tlog.SplitStoredHashIndex(x)
		r := (n+1)<<level - 1 // the last leaf under node (level, n)
		locs[i] = loc{r, level}
		if !recSet[r] {
			recSet[r] = true
			recIdx = append(recIdx, r)
		}
	}
	blobs := make(map[int64][]byte, len(recIdx))
	for start := 0; start < len(recIdx); start += 500 {
		chunk := recIdx[start:min(start+500, len(recIdx))]
		args := make([]any, len(chunk))
		for i, x := range chunk {
			args[i] = x
		}
		rows, err := q.QueryContext(ctx, "SELECT idx, hashes FROM audit_records WHERE idx IN ("+s.placeholders(1, len(chunk))+")", args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var x int64
			var b []byte
			if err := rows.Scan(&x, &b); err != nil {
				rows.Close()
				return nil, err
			}
			blobs[x] = b
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	out := make([]tlog.Hash, len(indexes))
	for i, l := range locs {
		b, ok := blobs[l.rec]
		if !ok || len(b) < (l.level+1)*tlog.HashSize {
			return nil, fmt.Errorf("audit: stored hash %d (record %d level %d) missing", indexes[i], l.rec, l.level)
		}
		copy(out[i][:], b[l.level*tlog.HashSize:])
	}
	return out, nil
}

func (s *sqlStorage) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	return s.readHashes(ctx, s.db, indexes)
}

const recordCols = "idx, id, kind, time_ns, workflow, caller, callee, decision, data, hashes"

func scanRecords(rows *sql.Rows, sizeHint int64) ([]Record, error) {
	defer rows.Close()
	out := make([]Record, 0, min(sizeHint, 1<<16))
	for rows.Next() {
		var r Record
		var kind string
		var tns int64
		var hashes []byte
		if err := rows.Scan(&r.Index, &r.ID, &kind, &tns, &r.Workflow, &r.Caller, &r.Callee, &r.Decision, &r.Data, &hashes); err != nil {
			return nil, fmt.Errorf("audit: read records: %w", err)
		}
		r.Kind = Kind(kind)
		r.Time = time.Unix(0, tns).UTC()
		for len(hashes) >= tlog.HashSize {
			var h tlog.Hash
			copy(h[:], hashes)
			r.Hashes = append(r.Hashes, h)
			hashes = hashes[tlog.HashSize:]
		}
		if len(hashes) != 0 { // a truncated hash shows as a mismatch in Verify
			r.Hashes = append(r.Hashes, tlog.Hash{})
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: read records: %w", err)
	}
	return out, nil
}

func (s *sqlStorage) Records(ctx context.Context, start, end int64) ([]Record, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+recordCols+" FROM audit_records WHERE idx >= "+s.d.ph(1)+" AND idx < "+s.d.ph(2)+" ORDER BY idx", start, end)
	if err != nil {
		return nil, fmt.Errorf("audit: read records: %w", err)
	}
	return scanRecords(rows, end-start)
}

func (s *sqlStorage) Lookup(ctx context.Context, id string) (Record, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+recordCols+" FROM audit_records WHERE id = "+s.d.ph(1), id)
	if err != nil {
		return Record{}, fmt.Errorf("audit: lookup: %w", err)
	}
	recs, err := scanRecords(rows, 1)
	if err != nil {
		return Record{}, err
	}
	if len(recs) == 0 {
		return Record{}, fmt.Errorf("%w: event %q", ErrNotFound, id)
	}
	return recs[0], nil
}

func (s *sqlStorage) Query(ctx context.Context, f Filter) ([]Record, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return s.d.ph(len(args))
	}
	if f.Workflow != "" {
		where = append(where, "workflow = "+arg(f.Workflow))
	}
	if f.Agent != "" {
		where = append(where, "(caller = "+arg(f.Agent)+" OR callee = "+arg(f.Agent)+")")
	}
	if f.Decision != "" {
		where = append(where, "decision = "+arg(f.Decision))
	}
	if f.Kind != "" {
		where = append(where, "kind = "+arg(string(f.Kind)))
	}
	if f.Since > 0 {
		where = append(where, "idx >= "+arg(f.Since))
	}
	if f.Before > 0 {
		where = append(where, "idx < "+arg(f.Before))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT " + recordCols + " FROM audit_records"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY idx DESC LIMIT " + arg(limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: query: %w", err)
	}
	recs, err := scanRecords(rows, 1)
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	return recs, nil
}

func (s *sqlStorage) Size(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(idx)+1, 0) FROM audit_records").Scan(&n); err != nil {
		return 0, fmt.Errorf("audit: size: %w", err)
	}
	return n, nil
}

func (s *sqlStorage) PutCheckpoint(ctx context.Context, c Checkpoint) error {
	q := "INSERT INTO audit_checkpoints (size, root, note, time_ns) VALUES (" + s.placeholders(1, 4) + ") ON CONFLICT (size) DO NOTHING"
	if _, err := s.db.ExecContext(ctx, q, c.Size, c.Root[:], c.Note, c.Time.UnixNano()); err != nil {
		return fmt.Errorf("audit: store checkpoint: %w", err)
	}
	return nil
}

func (s *sqlStorage) checkpoints(ctx context.Context, q string) ([]Checkpoint, error) {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var c Checkpoint
		var root []byte
		var tns int64
		if err := rows.Scan(&c.Size, &root, &c.Note, &tns); err != nil {
			return nil, fmt.Errorf("audit: read checkpoints: %w", err)
		}
		copy(c.Root[:], root)
		c.Time = time.Unix(0, tns).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *sqlStorage) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	return s.checkpoints(ctx, "SELECT size, root, note, time_ns FROM audit_checkpoints ORDER BY size")
}

func (s *sqlStorage) LatestCheckpoint(ctx context.Context) (Checkpoint, error) {
	cs, err := s.checkpoints(ctx, "SELECT size, root, note, time_ns FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
	if err != nil {
		return Checkpoint{}, err
	}
	if len(cs) == 0 {
		return Checkpoint{}, fmt.Errorf("%w: no checkpoint", ErrNotFound)
	}
	return cs[0], nil
}

func (s *sqlStorage) scanLeaves(ctx context.Context, start, end int64, fn func(idx int64, data, hashes []byte)) error {
	rows, err := s.db.QueryContext(ctx, "SELECT idx, data, hashes FROM audit_records WHERE idx >= "+s.d.ph(1)+" AND idx < "+s.d.ph(2)+" ORDER BY idx", start, end)
	if err != nil {
		return fmt.Errorf("audit: read records: %w", err)
	}
	defer rows.Close()
	var idx int64
	var data, hashes sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&idx, &data, &hashes); err != nil {
			return fmt.Errorf("audit: read records: %w", err)
		}
		fn(idx, data, hashes)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: read records: %w", err)
	}
	return nil
}
