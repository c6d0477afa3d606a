package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-a2a/warden/internal/store"
)

// outboxTests check the transactional outbox: a write's events are staged if and only if
// the write took effect, in the same transaction.
var outboxTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"OutboxEventsStagedWithEachWrite", testOutboxEachWrite},
	{"OutboxNothingStagedWhenTheWriteIsRefused", testOutboxRefusedWrites},
	{"OutboxWriteRolledBackWhenStagingFails", testOutboxStagingFails},
	{"OutboxConcurrentWritesEachWithItsEvent", testOutboxConcurrent},
}

func ev(id string) store.Event {
	return store.Event{ID: id, Data: []byte(`{"id":"` + id + `"}`)}
}

func pendingIDs(t *testing.T, s store.Store) []string {
	t.Helper()
	evs, err := s.PendingEvents(context.Background(), 1000)
	if err != nil {
		t.Fatalf("PendingEvents: %v", err)
	}
	ids := []string{}
	for _, e := range evs {
		if want := `{"id":"` + e.ID + `"}`; string(e.Data) != want {
			t.Errorf("event %s: data %q, want %q", e.ID, e.Data, want)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

func testOutboxEachWrite(t *testing.T, s store.Store) {
	ctx := context.Background()
	steps := []struct {
		id    string
		write func(evs ...store.Event) error
	}{
		{"entry-created", func(evs ...store.Event) error { return s.CreateEntry(ctx, entry("procurement"), evs...) }},
		{"attrs-updated", func(evs ...store.Event) error { return s.UpdateEntryAttrs(ctx, "procurement", []byte(`{}`), evs...) }},
		{"token-created", func(evs ...store.Event) error { return s.CreateJoinToken(ctx, token("procurement", "s1"), evs...) }},
		{"svid-recorded", func(evs ...store.Event) error {
			return s.RecordSVID(ctx, svid("0a", "spiffe://example.org/agent/procurement"), evs...)
		}},
		{"trust-state-1", func(evs ...store.Event) error {
			return s.PutTrustState(ctx, store.TrustState{Version: 1, Signed: []byte("v1"), CreatedAt: T0}, evs...)
		}},
		{"entry-deleted", func(evs ...store.Event) error { return s.DeleteEntry(ctx, "procurement", evs...) }},
	}
	var want []string
	for _, st := range steps {
		// Two events with one write: both staged, in order.
		if err := st.write(ev(st.id), ev(st.id+"-2")); err != nil {
			t.Fatalf("%s: %v", st.id, err)
		}
		want = append(want, st.id, st.id+"-2")
	}
	if diff := cmp.Diff(want, pendingIDs(t, s)); diff != "" {
		t.Fatalf("staged events (-want +got):\n%s", diff)
	}
	if err := s.DeleteEvents(ctx, []string{"entry-created", "token-created", "not-staged"}); err != nil {
		t.Fatalf("DeleteEvents: %v", err)
	}
	var left []string
	for _, id := range want {
		if id != "entry-created" && id != "token-created" {
			left = append(left, id)
		}
	}
	want = left
	if diff := cmp.Diff(want, pendingIDs(t, s)); diff != "" {
		t.Errorf("after DeleteEvents (-want +got):\n%s", diff)
	}
	evs, err := s.PendingEvents(ctx, 2)
	if err != nil || len(evs) != 2 || evs[0].ID != want[0] {
		t.Errorf("PendingEvents(limit 2) = %v, %v; want the 2 oldest", evs, err)
	}
	if err := s.DeleteEvents(ctx, nil); err != nil {
		t.Errorf("DeleteEvents(nil): %v", err)
	}
}

func testOutboxRefusedWrites(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateEntry(t, s, entry("procurement"))
	mustCreateToken(t, s, token("procurement", "s1"))
	if err := s.RecordSVID(ctx, svid("0a", "spiffe://example.org/agent/procurement")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutTrustState(ctx, store.TrustState{Version: 1, Signed: []byte("v1"), CreatedAt: T0}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"duplicate-entry", s.CreateEntry(ctx, entry("procurement"), ev("e1")), store.ErrExists},
		{"update-missing-entry", s.UpdateEntryAttrs(ctx, "nope", []byte(`{}`), ev("e2")), store.ErrNotFound},
		{"delete-missing-entry", s.DeleteEntry(ctx, "nope", ev("e3")), store.ErrNotFound},
		{"token-unknown-entry", s.CreateJoinToken(ctx, token("nope", "s2"), ev("e4")), store.ErrNotFound},
		{"token-duplicate-hash", s.CreateJoinToken(ctx, token("procurement", "s1"), ev("e5")), store.ErrExists},
		{"svid-duplicate-serial", s.RecordSVID(ctx, svid("0a", "spiffe://example.org/agent/x"), ev("e6")), store.ErrExists},
		{"trust-state-not-next", s.PutTrustState(ctx, store.TrustState{Version: 3, Signed: []byte("v3"), CreatedAt: T0}, ev("e7")), store.ErrConflict},
		{"trust-state-taken", s.PutTrustState(ctx, store.TrustState{Version: 1, Signed: []byte("v1b"), CreatedAt: T0}, ev("e8")), store.ErrConflict},
	} {
		wantErr(t, tc.name, tc.err, tc.want)
	}
	if got := pendingIDs(t, s); len(got) != 0 {
		t.Errorf("refused writes staged events %v", got)
	}
}

// testOutboxStagingFails: an event that cannot be staged (its id is staged already)
// rolls the write back; the write and its events are one transaction.
func testOutboxStagingFails(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateEntry(t, s, entry("procurement"))
	if err := s.CreateEntry(ctx, entry("first"), ev("dup")); err != nil {
		t.Fatal(err)
	}
	err := s.CreateEntry(ctx, entry("second"), ev("dup"))
	if err == nil || errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateEntry with an event id already staged: %v, want a failure", err)
	}
	if _, err := s.GetEntry(ctx, "second"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("entry committed without its event: GetEntry error %v", err)
	}
	if err := s.PutTrustState(ctx, store.TrustState{Version: 1, Signed: []byte("v1"), CreatedAt: T0}, ev("dup")); err == nil {
		t.Fatal("PutTrustState with an event id already staged succeeded")
	}
	if _, err := s.LatestTrustState(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("trust state committed without its event: LatestTrustState error %v", err)
	}
	if err := s.DeleteEntry(ctx, "procurement", store.Event{ID: "no-data"}); err == nil {
		t.Error("DeleteEntry with an event without data succeeded")
	}
	if _, err := s.GetEntry(ctx, "procurement"); err != nil {
		t.Errorf("entry deleted though its event was refused: %v", err)
	}
	if diff := cmp.Diff([]string{"dup"}, pendingIDs(t, s)); diff != "" {
		t.Errorf("staged (-want +got):\n%s", diff)
	}
}

// testOutboxConcurrent: concurrent writes (group-committed together on SQLite), some of
// them refused, stage exactly the events of those that took effect.
func testOutboxConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := entry(fmt.Sprintf("agent-%d", i/2)) // pairs race for one name
			e.SPIFFEID += fmt.Sprintf("-%d", i)
			errs[i] = s.CreateEntry(ctx, e, ev(fmt.Sprintf("ev-%d", i)))
		}()
	}
	wg.Wait()
	want := map[string]bool{}
	for i, err := range errs {
		switch {
		case err == nil:
			want[fmt.Sprintf("ev-%d", i)] = true
		case !errors.Is(err, store.ErrExists):
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if len(want) != n/2 {
		t.Fatalf("%d writes succeeded, want %d (one per name)", len(want), n/2)
	}
	got := map[string]bool{}
	for _, id := range pendingIDs(t, s) {
		got[id] = true
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("staged events vs successful writes (-want +got):\n%s", diff)
	}
}
