package audit

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

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

const recordCols = "idx, id, kind, time_ns, workflow, caller, callee, decision, data, hashes, action, reason"

func scanRecords(rows *sql.Rows, sizeHint int64) ([]Record, error) {
	defer rows.Close()
	out := make([]Record, 0, min(sizeHint, 1<<16))
	for rows.Next() {
		var r Record
		var kind string
		var tns int64
		var hashes []byte
		if err := rows.Scan(&r.Index, &r.ID, &kind, &tns, &r.Workflow, &r.Caller, &r.Callee, &r.Decision, &r.Data, &hashes, &r.Action, &r.Reason); err != nil {
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
	if f.Action != "" {
		where = append(where, "action = "+arg(f.Action))
	}
	if f.Reason != "" {
		where = append(where, "reason = "+arg(f.Reason))
	}
	if !f.From.IsZero() {
		where = append(where, "time_ns >= "+arg(f.From.UnixNano()))
	}
	if !f.To.IsZero() {
		where = append(where, "time_ns < "+arg(f.To.UnixNano()))
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

func (s *sqlStorage) scanLeaves(ctx context.Context, start, end int64, fn func(idx int64, data, hashes []byte, c *storedColumns)) error {
	rows, err := s.db.QueryContext(ctx, "SELECT idx, data, hashes, id, kind, time_ns, workflow, caller, callee, decision, action, reason FROM audit_records WHERE idx >= "+s.d.ph(1)+" AND idx < "+s.d.ph(2)+" ORDER BY idx", start, end)
	if err != nil {
		return fmt.Errorf("audit: read records: %w", err)
	}
	defer rows.Close()
	var idx int64
	var data, hashes sql.RawBytes
	var c storedColumns
	var id, kind, workflow, caller, callee, decision, action, reason sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&idx, &data, &hashes, &id, &kind, &c.timeNS, &workflow, &caller, &callee, &decision, &action, &reason); err != nil {
			return fmt.Errorf("audit: read records: %w", err)
		}
		c.id, c.kind, c.workflow, c.caller, c.callee, c.decision, c.action, c.reason = id, kind, workflow, caller, callee, decision, action, reason
		fn(idx, data, hashes, &c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: read records: %w", err)
	}
	return nil
}

func (s *sqlStorage) PutCosignatures(ctx context.Context, size int64, cs []Cosignature) error {
	q := "INSERT INTO audit_cosignatures (size, witness, key_hash, sig, time_ns) VALUES (" + s.placeholders(1, 5) + ")" +
		" ON CONFLICT (size, witness, key_hash) DO UPDATE SET sig = excluded.sig, time_ns = excluded.time_ns" +
		" WHERE excluded.time_ns > audit_cosignatures.time_ns"
	for _, c := range cs {
		if _, err := s.db.ExecContext(ctx, q, size, c.Sig.Name, int64(c.Sig.Hash), c.Sig.Base64, c.Time.UnixNano()); err != nil {
			return fmt.Errorf("audit: store cosignature: %w", err)
		}
	}
	return nil
}

func (s *sqlStorage) Cosignatures(ctx context.Context, size int64) (map[int64][]Cosignature, error) {
	q := "SELECT size, witness, key_hash, sig, time_ns FROM audit_cosignatures WHERE size >= " + s.d.ph(1) + " AND size <= " + s.d.ph(2) + " ORDER BY size, witness, key_hash"
	lo, hi := size, size
	if size < 0 {
		lo, hi = 0, math.MaxInt64
	}
	rows, err := s.db.QueryContext(ctx, q, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("audit: read cosignatures: %w", err)
	}
	defer rows.Close()
	out := map[int64][]Cosignature{}
	for rows.Next() {
		var size, hash, tns int64
		var c Cosignature
		if err := rows.Scan(&size, &c.Sig.Name, &hash, &c.Sig.Base64, &tns); err != nil {
			return nil, fmt.Errorf("audit: read cosignatures: %w", err)
		}
		c.Sig.Hash = uint32(hash)
		c.Time = time.Unix(0, tns).UTC()
		out[size] = append(out[size], c)
	}
	return out, rows.Err()
}
