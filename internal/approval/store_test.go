package approval_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/store/storetest"
)

// backends are the Store implementations every store test runs against: the approval
// tables inside the control plane's own SQLite file and PostgreSQL database.
var backends = map[string]func(t testing.TB) approval.Store{
	"sqlite": func(t testing.TB) approval.Store {
		main, err := sqlite.Open(filepath.Join(t.TempDir(), "warden.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { main.Close() })
		st, err := approval.NewSQLite(context.Background(), main.DB())
		if err != nil {
			t.Fatal(err)
		}
		return st
	},
	"postgres": func(t testing.TB) approval.Store {
		main, err := postgres.Open(context.Background(), storetest.PostgresDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { main.Close() })
		st, err := approval.NewPostgres(context.Background(), main.DB())
		if err != nil {
			t.Fatal(err)
		}
		return st
	},
}

func forEachBackend(t *testing.T, f func(t *testing.T, open func(t testing.TB) approval.Store)) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) { f(t, open) })
	}
}

var t0 = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)

func sampleRequest(id string) approval.Request {
	return approval.Request{ID: id, Requester: "spiffe://supplychain.example/agent/payments", FiledBy: "spiffe://supplychain.example/gate/bank",
		Audience: "spiffe://supplychain.example/agent/bank",
		Action:   "payment.release", Resource: "Invoice/INV-7", Amount: 25000, Currency: "EUR", IntentHash: "FXzhEFIzMCyQCst6sb6EnW3GvUkJr6SwZYsmJBBrzXk",
		Required: 2, PolicyID: "payment-release-needs-two-approvals", Workflow: "wf-1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
}

// TestStoreContract is the contract every Store implementation passes.
func TestStoreContract(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t testing.TB) approval.Store) {
		ctx := context.Background()
		st := open(t)
		r := sampleRequest("apr_1")
		if err := st.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateRequest(ctx, r); !errors.Is(err, approval.ErrExists) {
			t.Errorf("duplicate request id: %v, want ErrExists", err)
		}
		got, ds, err := st.GetRequest(ctx, "apr_1")
		if err != nil || len(ds) != 0 {
			t.Fatalf("GetRequest: %v, %d decisions", err, len(ds))
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		if _, _, err := st.GetRequest(ctx, "apr_nope"); !errors.Is(err, approval.ErrNotFound) {
			t.Errorf("unknown request: %v", err)
		}
		d := approval.Decision{ApprovalID: "apr_1", Approver: "alice", Decision: approval.DecisionApprove, Reason: "ok",
			Statement: []byte("stmt"), Signature: []byte{1, 2, 3}, KeyID: "k", DecidedAt: t0.Add(time.Minute)}
		if err := st.AddDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
		d2 := d
		d2.Decision = approval.DecisionDeny
		if err := st.AddDecision(ctx, d2); !errors.Is(err, approval.ErrExists) {
			t.Errorf("same approver twice: %v, want ErrExists", err)
		}
		d3 := d
		d3.ApprovalID = "apr_nope"
		if err := st.AddDecision(ctx, d3); !errors.Is(err, approval.ErrNotFound) {
			t.Errorf("decision on unknown request: %v, want ErrNotFound", err)
		}
		_, ds, _ = st.GetRequest(ctx, "apr_1")
		if diff := cmp.Diff([]approval.Decision{d}, ds); diff != "" {
			t.Errorf("decisions (-want +got):\n%s", diff)
		}
		r2 := sampleRequest("apr_2")
		r2.CreatedAt = t0.Add(time.Second)
		if err := st.CreateRequest(ctx, r2); err != nil {
			t.Fatal(err)
		}
		list, err := st.ListRequests(ctx, 10)
		if err != nil || len(list) != 2 || list[0].ID != "apr_2" {
			t.Errorf("ListRequests newest first: %v %v", list, err)
		}
		if list, _ := st.ListRequests(ctx, 1); len(list) != 1 {
			t.Errorf("limit ignored: %d", len(list))
		}

		a := approval.Approver{Name: "alice", PublicKeyPEM: []byte("pem"), SPIFFEID: "spiffe://supplychain.example/agent/alice-bot", CreatedAt: t0}
		if err := st.PutApprover(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := st.PutApprover(ctx, a); !errors.Is(err, approval.ErrExists) {
			t.Errorf("duplicate approver: %v", err)
		}
		if got, err := st.GetApprover(ctx, "alice"); err != nil || !cmp.Equal(a, got) {
			t.Errorf("GetApprover: %v %v", got, err)
		}
		if as, err := st.ListApprovers(ctx); err != nil || len(as) != 1 {
			t.Errorf("ListApprovers: %v %v", as, err)
		}
		if err := st.DeleteApprover(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteApprover(ctx, "alice"); !errors.Is(err, approval.ErrNotFound) {
			t.Errorf("delete twice: %v", err)
		}
		if _, err := st.GetApprover(ctx, "alice"); !errors.Is(err, approval.ErrNotFound) {
			t.Errorf("deleted approver: %v", err)
		}
	})
}

// TestConcurrentSameApproverCountsOnce: of many concurrent decisions by one approver
// (say, two server replicas), exactly one is stored.
func TestConcurrentSameApproverCountsOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t testing.TB) approval.Store) {
		ctx := context.Background()
		st := open(t)
		if err := st.CreateRequest(ctx, sampleRequest("apr_1")); err != nil {
			t.Fatal(err)
		}
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = st.AddDecision(ctx, approval.Decision{ApprovalID: "apr_1", Approver: "alice", Decision: approval.DecisionApprove,
					Statement: []byte("s"), Signature: []byte("g"), DecidedAt: t0})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, approval.ErrExists):
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d decisions stored, want 1", ok)
		}
	})
}

// TestConsumeContract: Consume uses a request up once; a used, denied, expired or
// unknown request is not consumed.
func TestConsumeContract(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t testing.TB) approval.Store) {
		ctx := context.Background()
		st := open(t)
		for _, id := range []string{"apr_ok", "apr_denied", "apr_old"} {
			if err := st.CreateRequest(ctx, sampleRequest(id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.AddDecision(ctx, approval.Decision{ApprovalID: "apr_denied", Approver: "bob", Decision: approval.DecisionDeny,
			Statement: []byte("s"), Signature: []byte("g"), DecidedAt: t0}); err != nil {
			t.Fatal(err)
		}
		gate := "spiffe://supplychain.example/gate/bank"
		at := t0.Add(time.Minute)
		if err := st.Consume(ctx, "apr_ok", gate, at); err != nil {
			t.Fatalf("first consume: %v", err)
		}
		r, _, err := st.GetRequest(ctx, "apr_ok")
		if err != nil || !r.ConsumedAt.Equal(at) || r.ConsumedBy != gate {
			t.Errorf("after consume: at %v by %q, %v", r.ConsumedAt, r.ConsumedBy, err)
		}
		for name, tc := range map[string]struct {
			id   string
			at   time.Time
			want error
		}{
			"used twice":        {"apr_ok", at, approval.ErrNotConsumable},
			"denied":            {"apr_denied", at, approval.ErrNotConsumable},
			"expired":           {"apr_old", t0.Add(2 * time.Hour), approval.ErrNotConsumable},
			"expires this tick": {"apr_old", t0.Add(time.Hour), approval.ErrNotConsumable},
			"unknown":           {"apr_nope", at, approval.ErrNotFound},
		} {
			if err := st.Consume(ctx, tc.id, gate, tc.at); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", name, err, tc.want)
			}
		}
		if r, _, _ := st.GetRequest(ctx, "apr_old"); !r.ConsumedAt.IsZero() {
			t.Error("an expired request was marked used")
		}
	})
}

// TestConcurrentConsumersOneWins: many gates (goroutines, replicas) consume one approval
// at once; exactly one succeeds, so one approval releases one call.
func TestConcurrentConsumersOneWins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t testing.TB) approval.Store) {
		ctx := context.Background()
		st := open(t)
		if err := st.CreateRequest(ctx, sampleRequest("apr_1")); err != nil {
			t.Fatal(err)
		}
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = st.Consume(ctx, "apr_1", "spiffe://supplychain.example/gate/g"+string(rune('a'+i)), t0.Add(time.Minute))
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, approval.ErrNotConsumable):
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d consumers won, want exactly 1", ok)
		}
	})
}

// TestMigrateTwice: opening the tables again (a restart, a second replica) is a no-op.
func TestMigrateTwice(t *testing.T) {
	main, err := sqlite.Open(filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	for range 2 {
		if _, err := approval.NewSQLite(context.Background(), main.DB()); err != nil {
			t.Fatal(err)
		}
	}
	var v int
	if err := main.DB().QueryRow("SELECT MAX(version) FROM approval_schema_version").Scan(&v); err != nil || v != 2 {
		t.Errorf("approval_schema_version = %d, %v", v, err)
	}
}

// TestPurgeExpired: requests that expired before the cut go, with their decisions; those
// expiring at or after it stay, whatever their state.
func TestPurgeExpired(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t testing.TB) approval.Store) {
		ctx := context.Background()
		st := open(t)
		old, edge, live := sampleRequest("apr_old"), sampleRequest("apr_edge"), sampleRequest("apr_live")
		old.ExpiresAt = t0.Add(time.Minute)
		edge.ExpiresAt = t0.Add(time.Hour)
		live.ExpiresAt = t0.Add(48 * time.Hour)
		for _, r := range []approval.Request{old, edge, live} {
			if err := st.CreateRequest(ctx, r); err != nil {
				t.Fatal(err)
			}
			d := approval.Decision{ApprovalID: r.ID, Approver: "alice", Decision: approval.DecisionApprove, Reason: "ok",
				Statement: []byte("stmt"), Signature: []byte{1}, KeyID: "k", DecidedAt: t0}
			if err := st.AddDecision(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		n, err := st.PurgeExpired(ctx, t0.Add(time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("PurgeExpired: %d, %v; want 1", n, err)
		}
		if _, _, err := st.GetRequest(ctx, "apr_old"); !errors.Is(err, approval.ErrNotFound) {
			t.Errorf("purged request: %v", err)
		}
		for _, id := range []string{"apr_edge", "apr_live"} {
			if _, ds, err := st.GetRequest(ctx, id); err != nil || len(ds) != 1 {
				t.Errorf("%s: %v, %d decisions", id, err, len(ds))
			}
		}
		// Its decision went with it: the same approver may decide a new request of that id.
		if err := st.CreateRequest(ctx, old); err != nil {
			t.Fatalf("re-create after purge: %v", err)
		}
		if _, ds, _ := st.GetRequest(ctx, "apr_old"); len(ds) != 0 {
			t.Errorf("decisions survived the purge: %d", len(ds))
		}
	})
}
