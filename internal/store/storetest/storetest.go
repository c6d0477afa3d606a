// Package storetest is the conformance suite every store.Store backend runs (in the style
// of SPIRE's keymanagertest): each method, every error case named in the store package's
// doc comments, time round-trips, and the concurrency guarantees (one winner per join
// token, one winner per trust-state version, many concurrent enrollments).
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-a2a/warden/internal/store"
)

// T0 is the suite's reference time: UTC, microsecond precision (what every backend keeps).
var T0 = time.Date(2026, 11, 27, 10, 30, 0, 123456000, time.UTC)

// Run runs the conformance suite. open returns a fresh, empty store for one subtest; Run
// closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"EntryRoundTrip", testEntryRoundTrip},
		{"EntryDuplicateNameIsErrExists", testEntryDuplicateName},
		{"EntryDuplicateSPIFFEIDIsErrExists", testEntryDuplicateSPIFFEID},
		{"EntryMissingIsErrNotFound", testEntryMissing},
		{"EntryAttrsNilAndEmptyAreEqual", testEntryAttrsNilEmpty},
		{"ListEntriesOrderedByName", testListEntries},
		{"UpdateEntryAttrs", testUpdateEntryAttrs},
		{"DeleteEntryDeletesItsTokens", testDeleteEntryDeletesTokens},
		{"TokenForUnknownEntryIsErrNotFound", testTokenUnknownEntry},
		{"TokenDuplicateHashIsErrExists", testTokenDuplicateHash},
		{"TokenInvalidIsRejected", testTokenInvalid},
		{"TokenConsumedOnce", testTokenConsumedOnce},
		{"TokenExpiredIsNotConsumed", testTokenExpired},
		{"TokenUnknownIsErrNotFound", testTokenUnknown},
		{"SVIDRoundTripAndCount", testSVID},
		{"SVIDDuplicateSerialIsErrExists", testSVIDDuplicate},
		{"TrustStateVersionMustBeLatestPlusOne", testTrustState},
		{"TimesRoundTripInUTC", testTimes},
		{"ConcurrentConsumeOneWinner", func(t *testing.T, s store.Store) { ConcurrentConsume(t, s, s) }},
		{"ConcurrentEnrollmentsAllSucceed", testConcurrentEnrollments},
		{"ConcurrentDuplicateSerialsOneWinnerEach", testConcurrentDuplicateSerials},
		{"CancelledContextWritesNothing", testCancelledContext},
		{"ConcurrentPutTrustStateOneWinner", func(t *testing.T, s store.Store) { ConcurrentPutTrustState(t, s, s) }},
	}
	tests = append(tests, outboxTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func entry(name string) store.Entry {
	return store.Entry{
		Name:      name,
		SPIFFEID:  "spiffe://example.org/agent/" + name,
		Role:      "buyer",
		Class:     "transactional",
		Zone:      "eu-1",
		CreatedAt: T0,
		Attrs:     []byte(`{"owner":"ops"}`),
	}
}

func hash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func token(entryName, secret string) store.JoinToken {
	return store.JoinToken{Hash: hash(secret), EntryName: entryName, CreatedAt: T0, ExpiresAt: T0.Add(10 * time.Minute)}
}

func mustCreateEntry(t testing.TB, s store.Store, e store.Entry) {
	t.Helper()
	if err := s.CreateEntry(context.Background(), e); err != nil {
		t.Fatalf("CreateEntry(%q): %v", e.Name, err)
	}
}

func mustCreateToken(t testing.TB, s store.Store, tok store.JoinToken) {
	t.Helper()
	if err := s.CreateJoinToken(context.Background(), tok); err != nil {
		t.Fatalf("CreateJoinToken: %v", err)
	}
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Errorf("%s: error %v, want %v", what, got, want)
	}
}

func testEntryRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	e := entry("procurement")
	mustCreateEntry(t, s, e)
	got, err := s.GetEntry(ctx, e.Name)
	if err != nil {
		t.Fatalf("GetEntry: %v", err)
	}
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("GetEntry mismatch (-want +got):\n%s", diff)
	}
	got, err = s.GetEntryBySPIFFEID(ctx, e.SPIFFEID)
	if err != nil {
		t.Fatalf("GetEntryBySPIFFEID: %v", err)
	}
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("GetEntryBySPIFFEID mismatch (-want +got):\n%s", diff)
	}
}

func testEntryDuplicateName(t *testing.T, s store.Store) {
	e := entry("procurement")
	mustCreateEntry(t, s, e)
	e2 := e
	e2.SPIFFEID = "spiffe://example.org/agent/other"
	wantErr(t, "CreateEntry same name", s.CreateEntry(context.Background(), e2), store.ErrExists)
}

func testEntryDuplicateSPIFFEID(t *testing.T, s store.Store) {
	e := entry("procurement")
	mustCreateEntry(t, s, e)
	e2 := e
	e2.Name = "other"
	wantErr(t, "CreateEntry same SPIFFE ID", s.CreateEntry(context.Background(), e2), store.ErrExists)
	if _, err := s.GetEntry(context.Background(), "other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused entry was stored: GetEntry error %v", err)
	}
}

func testEntryMissing(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.GetEntry(ctx, "nope")
	wantErr(t, "GetEntry", err, store.ErrNotFound)
	_, err = s.GetEntryBySPIFFEID(ctx, "spiffe://example.org/agent/nope")
	wantErr(t, "GetEntryBySPIFFEID", err, store.ErrNotFound)
	wantErr(t, "UpdateEntryAttrs", s.UpdateEntryAttrs(ctx, "nope", []byte("{}")), store.ErrNotFound)
	wantErr(t, "DeleteEntry", s.DeleteEntry(ctx, "nope"), store.ErrNotFound)
}

func testEntryAttrsNilEmpty(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		attrs []byte
	}{{"nil-attrs", nil}, {"empty-attrs", []byte{}}} {
		e := entry(tc.name)
		e.Attrs = tc.attrs
		mustCreateEntry(t, s, e)
		got, err := s.GetEntry(ctx, tc.name)
		if err != nil {
			t.Fatalf("GetEntry: %v", err)
		}
		if len(got.Attrs) != 0 {
			t.Errorf("%s: Attrs = %q, want empty", tc.name, got.Attrs)
		}
	}
	// Clearing attrs with either form reads back empty too.
	mustCreateEntry(t, s, entry("cleared"))
	for _, attrs := range [][]byte{nil, {}} {
		if err := s.UpdateEntryAttrs(ctx, "cleared", attrs); err != nil {
			t.Fatalf("UpdateEntryAttrs: %v", err)
		}
		got, _ := s.GetEntry(ctx, "cleared")
		if len(got.Attrs) != 0 {
			t.Errorf("after UpdateEntryAttrs(%#v): Attrs = %q, want empty", attrs, got.Attrs)
		}
	}
}

func testListEntries(t *testing.T, s store.Store) {
	ctx := context.Background()
	got, err := s.ListEntries(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("ListEntries on empty store = %v, %v; want none", got, err)
	}
	// Byte order: '-' (0x2d) < '0' < 'a'; a locale collation would order these differently.
	names := []string{"zeta", "a-b", "a0", "ab", "alpha", "0-first"}
	for _, n := range names {
		mustCreateEntry(t, s, entry(n))
	}
	got, err = s.ListEntries(ctx)
	if err != nil {
		t.Fatalf("ListEntries: %v", err)
	}
	var gotNames []string
	for _, e := range got {
		gotNames = append(gotNames, e.Name)
	}
	want := []string{"0-first", "a-b", "a0", "ab", "alpha", "zeta"}
	if diff := cmp.Diff(want, gotNames); diff != "" {
		t.Errorf("ListEntries order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(entry("ab"), got[3]); diff != "" {
		t.Errorf("ListEntries entry (-want +got):\n%s", diff)
	}
}

func testUpdateEntryAttrs(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateEntry(t, s, entry("logistics"))
	attrs := []byte(`{"pcr":{"7":"abcd"}}`)
	if err := s.UpdateEntryAttrs(ctx, "logistics", attrs); err != nil {
		t.Fatalf("UpdateEntryAttrs: %v", err)
	}
	got, err := s.GetEntry(ctx, "logistics")
	if err != nil {
		t.Fatalf("GetEntry: %v", err)
	}
	if !bytes.Equal(got.Attrs, attrs) {
		t.Errorf("Attrs = %q, want %q", got.Attrs, attrs)
	}
	want := entry("logistics")
	want.Attrs = attrs
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UpdateEntryAttrs changed other fields (-want +got):\n%s", diff)
	}
}

func testDeleteEntryDeletesTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateEntry(t, s, entry("payment-release"))
	mustCreateEntry(t, s, entry("compliance"))
	mustCreateToken(t, s, token("payment-release", "secret-1"))
	mustCreateToken(t, s, token("compliance", "secret-2"))
	if err := s.DeleteEntry(ctx, "payment-release"); err != nil {
		t.Fatalf("DeleteEntry: %v", err)
	}
	if _, err := s.GetEntry(ctx, "payment-release"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetEntry after delete: %v, want ErrNotFound", err)
	}
	_, err := s.ConsumeJoinToken(ctx, hash("secret-1"), T0)
	wantErr(t, "ConsumeJoinToken for deleted entry", err, store.ErrNotFound)
	// The other entry's token is untouched.
	if _, err := s.ConsumeJoinToken(ctx, hash("secret-2"), T0); err != nil {
		t.Errorf("ConsumeJoinToken of another entry: %v", err)
	}
	// Re-creating the entry does not resurrect the old token.
	mustCreateEntry(t, s, entry("payment-release"))
	_, err = s.ConsumeJoinToken(ctx, hash("secret-1"), T0)
	wantErr(t, "ConsumeJoinToken after re-create", err, store.ErrNotFound)
}

func testTokenUnknownEntry(t *testing.T, s store.Store) {
	err := s.CreateJoinToken(context.Background(), token("ghost", "s"))
	wantErr(t, "CreateJoinToken for unknown entry", err, store.ErrNotFound)
}

func testTokenDuplicateHash(t *testing.T, s store.Store) {
	mustCreateEntry(t, s, entry("a"))
	mustCreateEntry(t, s, entry("b"))
	mustCreateToken(t, s, token("a", "same"))
	wantErr(t, "CreateJoinToken duplicate hash", s.CreateJoinToken(context.Background(), token("b", "same")), store.ErrExists)
	got, err := s.ConsumeJoinToken(context.Background(), hash("same"), T0)
	if err != nil || got.EntryName != "a" {
		t.Errorf("duplicate overwrote the first token: got %q, %v", got.EntryName, err)
	}
}

func testTokenInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateEntry(t, s, entry("a"))
	used := token("a", "used")
	used.UsedAt = T0
	if err := s.CreateJoinToken(ctx, used); err == nil {
		t.Error("CreateJoinToken with UsedAt set: no error")
	}
	short := token("a", "short")
	short.Hash = short.Hash[:16]
	if err := s.CreateJoinToken(ctx, short); err == nil {
		t.Error("CreateJoinToken with a 16-byte hash: no error")
	}
}

func testTokenConsumedOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateEntry(t, s, entry("vendor-portal"))
	tok := token("vendor-portal", "one-time")
	mustCreateToken(t, s, tok)
	now := T0.Add(time.Minute)
	got, err := s.ConsumeJoinToken(ctx, tok.Hash, now)
	if err != nil {
		t.Fatalf("first ConsumeJoinToken: %v", err)
	}
	want := tok
	want.UsedAt = now
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ConsumeJoinToken (-want +got):\n%s", diff)
	}
	_, err = s.ConsumeJoinToken(ctx, tok.Hash, now.Add(time.Second))
	wantErr(t, "second ConsumeJoinToken", err, store.ErrTokenUsed)
	// A used token that has since expired is still reported as used.
	_, err = s.ConsumeJoinToken(ctx, tok.Hash, T0.Add(time.Hour))
	wantErr(t, "ConsumeJoinToken of used, expired token", err, store.ErrTokenUsed)
}

func testTokenExpired(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateEntry(t, s, entry("demand-planner"))
	tok := token("demand-planner", "soon-expired")
	mustCreateToken(t, s, tok)
	// "now is not before ExpiresAt" is expired: exactly at ExpiresAt, and after.
	for _, now := range []time.Time{tok.ExpiresAt, tok.ExpiresAt.Add(time.Microsecond), tok.ExpiresAt.Add(time.Hour)} {
		_, err := s.ConsumeJoinToken(ctx, tok.Hash, now)
		wantErr(t, fmt.Sprintf("ConsumeJoinToken at ExpiresAt%+v", now.Sub(tok.ExpiresAt)), err, store.ErrTokenExpired)
	}
	// An expired attempt did not consume it: one microsecond before expiry still works.
	got, err := s.ConsumeJoinToken(ctx, tok.Hash, tok.ExpiresAt.Add(-time.Microsecond))
	if err != nil {
		t.Fatalf("ConsumeJoinToken just before expiry: %v", err)
	}
	if !got.UsedAt.Equal(tok.ExpiresAt.Add(-time.Microsecond)) {
		t.Errorf("UsedAt = %v", got.UsedAt)
	}
}

func testTokenUnknown(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, h := range [][]byte{hash("never-created"), nil, {}} {
		_, err := s.ConsumeJoinToken(ctx, h, T0)
		wantErr(t, fmt.Sprintf("ConsumeJoinToken(%x)", h), err, store.ErrNotFound)
	}
}

func svid(serial, id string) store.SVID {
	return store.SVID{
		Serial: serial, SPIFFEID: id, EntryName: "procurement", Kind: "enroll",
		NotBefore: T0, NotAfter: T0.Add(15 * time.Minute), IssuedAt: T0.Add(time.Second),
	}
}

func testSVID(t *testing.T, s store.Store) {
	ctx := context.Background()
	id := "spiffe://example.org/agent/procurement"
	if n, err := s.CountSVIDs(ctx, id); err != nil || n != 0 {
		t.Fatalf("CountSVIDs on empty store = %d, %v", n, err)
	}
	v := svid("0a1b2c", id)
	if err := s.RecordSVID(ctx, v); err != nil {
		t.Fatalf("RecordSVID: %v", err)
	}
	if err := s.RecordSVID(ctx, svid("0a1b2d", id)); err != nil {
		t.Fatalf("RecordSVID: %v", err)
	}
	if err := s.RecordSVID(ctx, svid("ff", "spiffe://example.org/agent/other")); err != nil {
		t.Fatalf("RecordSVID: %v", err)
	}
	got, err := s.GetSVID(ctx, "0a1b2c")
	if err != nil {
		t.Fatalf("GetSVID: %v", err)
	}
	if diff := cmp.Diff(v, got); diff != "" {
		t.Errorf("GetSVID (-want +got):\n%s", diff)
	}
	if n, err := s.CountSVIDs(ctx, id); err != nil || n != 2 {
		t.Errorf("CountSVIDs = %d, %v; want 2", n, err)
	}
	later := svid("01", id) // lower serial, later NotBefore: the latest
	later.NotBefore, later.NotAfter = T0.Add(8*time.Minute), T0.Add(23*time.Minute)
	if err := s.RecordSVID(ctx, later); err != nil {
		t.Fatalf("RecordSVID: %v", err)
	}
	if got, err := s.LatestSVID(ctx, id); err != nil || got.Serial != "01" {
		t.Errorf("LatestSVID = %+v, %v; want serial 01", got, err)
	}
	_, err = s.LatestSVID(ctx, "spiffe://example.org/agent/none")
	wantErr(t, "LatestSVID of an identity without SVIDs", err, store.ErrNotFound)
	if n, err := s.CountSVIDs(ctx, id); err != nil || n != 3 {
		t.Errorf("CountSVIDs = %d, %v; want 3", n, err)
	}
	_, err = s.GetSVID(ctx, "0A1B2C")
	wantErr(t, "GetSVID with other case", err, store.ErrNotFound)
}

func testSVIDDuplicate(t *testing.T, s store.Store) {
	ctx := context.Background()
	v := svid("abcdef", "spiffe://example.org/agent/a")
	if err := s.RecordSVID(ctx, v); err != nil {
		t.Fatalf("RecordSVID: %v", err)
	}
	wantErr(t, "RecordSVID duplicate", s.RecordSVID(ctx, svid("abcdef", "spiffe://example.org/agent/b")), store.ErrExists)
	if n, _ := s.CountSVIDs(ctx, "spiffe://example.org/agent/b"); n != 0 {
		t.Errorf("refused SVID counted: %d", n)
	}
}

func testTrustState(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.LatestTrustState(ctx)
	wantErr(t, "LatestTrustState on empty store", err, store.ErrNotFound)
	for _, v := range []int64{0, -1, 2} {
		wantErr(t, fmt.Sprintf("PutTrustState(%d) on empty store", v),
			s.PutTrustState(ctx, store.TrustState{Version: v, Signed: []byte("x"), CreatedAt: T0}), store.ErrConflict)
	}
	for v := int64(1); v <= 3; v++ {
		ts := store.TrustState{Version: v, Signed: []byte(fmt.Sprintf("doc-%d", v)), CreatedAt: T0.Add(time.Duration(v) * time.Second)}
		if err := s.PutTrustState(ctx, ts); err != nil {
			t.Fatalf("PutTrustState(%d): %v", v, err)
		}
		got, err := s.LatestTrustState(ctx)
		if err != nil {
			t.Fatalf("LatestTrustState: %v", err)
		}
		if diff := cmp.Diff(ts, got); diff != "" {
			t.Errorf("LatestTrustState (-want +got):\n%s", diff)
		}
	}
	for _, v := range []int64{1, 3, 5} {
		wantErr(t, fmt.Sprintf("PutTrustState(%d) at latest 3", v),
			s.PutTrustState(ctx, store.TrustState{Version: v, Signed: []byte("evil"), CreatedAt: T0}), store.ErrConflict)
	}
	got, _ := s.LatestTrustState(ctx)
	if got.Version != 3 || string(got.Signed) != "doc-3" {
		t.Errorf("a refused PutTrustState wrote: latest = %d %q", got.Version, got.Signed)
	}
}

func testTimes(t *testing.T, s store.Store) {
	ctx := context.Background()
	// A non-UTC input comes back as the same instant in UTC; microseconds survive;
	// nanoseconds below that are dropped (truncated or rounded, within 1 µs).
	loc := time.FixedZone("UTC+5:30", 5*3600+1800)
	in := time.Date(2031, 2, 3, 4, 5, 6, 789012345, loc)
	e := entry("times")
	e.CreatedAt = in
	mustCreateEntry(t, s, e)
	got, err := s.GetEntry(ctx, "times")
	if err != nil {
		t.Fatalf("GetEntry: %v", err)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
	}
	if d := got.CreatedAt.Sub(in); d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("CreatedAt = %v, want %v within 1µs", got.CreatedAt, in)
	}
	v := svid("7e", "spiffe://example.org/agent/times")
	v.NotBefore, v.NotAfter, v.IssuedAt = T0, T0.Add(time.Millisecond), T0.Add(time.Microsecond)
	if err := s.RecordSVID(ctx, v); err != nil {
		t.Fatalf("RecordSVID: %v", err)
	}
	gotV, err := s.GetSVID(ctx, "7e")
	if err != nil {
		t.Fatalf("GetSVID: %v", err)
	}
	for _, tt := range []time.Time{gotV.NotBefore, gotV.NotAfter, gotV.IssuedAt} {
		if tt.Location() != time.UTC {
			t.Errorf("SVID time %v not in UTC", tt)
		}
	}
	if diff := cmp.Diff(v, gotV); diff != "" {
		t.Errorf("SVID times (-want +got):\n%s", diff)
	}
}

// ConcurrentConsume has 100 goroutines, alternating between a and b (two handles on the
// same database, or the same one twice), consume one token: exactly one must win and the
// others must get ErrTokenUsed.
func ConcurrentConsume(t *testing.T, a, b store.Store) {
	ctx := context.Background()
	mustCreateEntry(t, a, entry("race"))
	tok := token("race", "contested")
	mustCreateToken(t, a, tok)
	const n = 100
	var wins, used atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := s.ConsumeJoinToken(ctx, tok.Hash, T0)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, store.ErrTokenUsed):
				used.Add(1)
			default:
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("ConsumeJoinToken: unexpected error %v", err)
	}
	if wins.Load() != 1 || used.Load() != n-1 {
		t.Errorf("%d winners and %d ErrTokenUsed among %d consumers; want 1 and %d", wins.Load(), used.Load(), n, n-1)
	}
}

// testConcurrentEnrollments runs the store side of 100 concurrent enrollments: each
// goroutine creates a token, consumes it and records an SVID with a unique serial.
func testConcurrentEnrollments(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 100
	for i := range n {
		mustCreateEntry(t, s, entry(fmt.Sprintf("agent-%03d", i)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			name := fmt.Sprintf("agent-%03d", i)
			tok := token(name, "secret-"+name)
			if err := s.CreateJoinToken(ctx, tok); err != nil {
				errs <- fmt.Errorf("%s: CreateJoinToken: %w", name, err)
				return
			}
			got, err := s.ConsumeJoinToken(ctx, tok.Hash, T0)
			if err != nil {
				errs <- fmt.Errorf("%s: ConsumeJoinToken: %w", name, err)
				return
			}
			e, err := s.GetEntry(ctx, got.EntryName)
			if err != nil {
				errs <- fmt.Errorf("%s: GetEntry: %w", name, err)
				return
			}
			if err := s.RecordSVID(ctx, svid(fmt.Sprintf("%032x", i+1), e.SPIFFEID)); err != nil {
				errs <- fmt.Errorf("%s: RecordSVID: %w", name, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range n {
		id := entry(fmt.Sprintf("agent-%03d", i)).SPIFFEID
		if c, err := s.CountSVIDs(ctx, id); err != nil || c != 1 {
			t.Errorf("CountSVIDs(%s) = %d, %v; want 1", id, c, err)
		}
	}
}

// testConcurrentDuplicateSerials records 25 serials twice each, all at once: exactly one
// of each pair succeeds and the other gets ErrExists. (With group commit, a duplicate's
// failure inside a shared transaction must not undo its neighbours.)
func testConcurrentDuplicateSerials(t *testing.T, s store.Store) {
	ctx := context.Background()
	const pairs = 25
	var wg sync.WaitGroup
	results := make([]error, 2*pairs)
	start := make(chan struct{})
	for i := range 2 * pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = s.RecordSVID(ctx, svid(fmt.Sprintf("dup%02d", i/2), fmt.Sprintf("spiffe://example.org/agent/w%d", i)))
		}()
	}
	close(start)
	wg.Wait()
	for p := range pairs {
		a, b := results[2*p], results[2*p+1]
		ok := (a == nil && errors.Is(b, store.ErrExists)) || (b == nil && errors.Is(a, store.ErrExists))
		if !ok {
			t.Errorf("serial dup%02d: results %v and %v, want one nil and one ErrExists", p, a, b)
			continue
		}
		got, err := s.GetSVID(ctx, fmt.Sprintf("dup%02d", p))
		winner := 2 * p
		if a != nil {
			winner++
		}
		if err != nil || got.SPIFFEID != fmt.Sprintf("spiffe://example.org/agent/w%d", winner) {
			t.Errorf("serial dup%02d: stored %q, %v; want the winner's", p, got.SPIFFEID, err)
		}
	}
}

func testCancelledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.RecordSVID(ctx, svid("cancelled", "spiffe://example.org/agent/c")); err == nil {
		t.Error("RecordSVID with a cancelled context: no error")
	}
	if _, err := s.GetSVID(context.Background(), "cancelled"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSVID after cancelled RecordSVID: %v, want ErrNotFound", err)
	}
}

// ConcurrentPutTrustState has 20 goroutines, alternating between a and b, put the same
// next version: exactly one must win, the others get ErrConflict, and the stored document
// is the winner's.
func ConcurrentPutTrustState(t *testing.T, a, b store.Store) {
	ctx := context.Background()
	if err := a.PutTrustState(ctx, store.TrustState{Version: 1, Signed: []byte("v1"), CreatedAt: T0}); err != nil {
		t.Fatalf("PutTrustState(1): %v", err)
	}
	const n = 20
	var wg sync.WaitGroup
	results := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = s.PutTrustState(ctx, store.TrustState{Version: 2, Signed: []byte(fmt.Sprintf("writer-%d", i)), CreatedAt: T0})
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range results {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("writers %d and %d both won version 2", winner, i)
			}
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("writer %d: unexpected error %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won version 2")
	}
	got, err := b.LatestTrustState(ctx)
	if err != nil {
		t.Fatalf("LatestTrustState: %v", err)
	}
	if got.Version != 2 || string(got.Signed) != fmt.Sprintf("writer-%d", winner) {
		t.Errorf("latest = %d %q, want 2 %q", got.Version, got.Signed, fmt.Sprintf("writer-%d", winner))
	}
}

// BenchRecordSVID measures RecordSVID with a unique serial per call: serially (one
// caller, so one commit per call) and from 16 concurrent goroutines (as concurrent
// renewals on a server).
func BenchRecordSVID(b *testing.B, open func(b *testing.B) store.Store) {
	ctx := context.Background()
	var seq atomic.Int64
	b.Run("serial", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		b.ReportAllocs()
		for b.Loop() {
			if err := s.RecordSVID(ctx, svid(fmt.Sprintf("%032x", seq.Add(1)), "spiffe://example.org/agent/bench")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel16", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		b.ReportAllocs()
		b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.RecordSVID(ctx, svid(fmt.Sprintf("%032x", seq.Add(1)), "spiffe://example.org/agent/bench")); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
