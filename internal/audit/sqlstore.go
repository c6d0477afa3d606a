package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

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
	const cols = 12
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
			args = append(args, r.Index, r.ID, string(r.Kind), r.Time.UnixNano(), r.Workflow, r.Caller, r.Callee, r.Decision, r.Data, hashes[start+i], r.Action, r.Reason)
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
