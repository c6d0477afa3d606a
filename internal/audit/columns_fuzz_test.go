package audit

import (
	"testing"
	"time"
)

// FuzzColumnsFromCanonical checks the fast column extractor that Verify uses against
// encoding/json: for every event ParseEvent accepts, the columns read from its canonical
// bytes equal the ones an append stores. Any other input must not panic.
func FuzzColumnsFromCanonical(f *testing.F) {
	seeds := []Event{
		{V: 1, ID: "d1", Kind: KindDecision, Time: time.Unix(1_800_000_000, 123), WorkflowID: "wf-1",
			Caller: "spiffe://example.org/agent/a", Callee: "spiffe://example.org/agent/b", Action: "po.create",
			Decision: DecisionDeny, Reason: "replay", Detail: map[string]string{"k": "v \"quoted\" \u2028"}},
		{V: 1, ID: "e1", Kind: KindRevocation, Time: time.Unix(1_800_000_000, 0), Subject: "spiffe://example.org/agent/x",
			Actor: "operator:admin", Outcome: "revoked", Reason: "key_compromise"},
		{V: 1, ID: "a1", Kind: KindDecision, Time: time.Unix(0, 1), Decision: DecisionAllow, WorkflowID: "é\\/<>&",
			Attestation: &Attestation{Tier: "none"}, DataObjects: []string{"x", "y"}, LatencyUS: 5},
	}
	for _, ev := range seeds {
		b, err := ev.Canonical()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"id":"x","id":"y","kind":"decision","time":"2026-01-01T00:00:00Z","decision":"allow"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"v":1,"id":"t","kind":"decision","time":"2026-02-31T00:00:00.5Z","decision":"allow"}`))
	f.Add([]byte(`{"v":1,"id":"t","kind":"decision","time":"2026-02-03T00:00:00.123456789+01:00","decision":"allow"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = columnsFromCanonical(data) // never panics
		ev, err := ParseEvent(data)
		if err != nil {
			return
		}
		canon, err := ev.Canonical()
		if err != nil {
			return
		}
		e := entryOf(&ev, canon)
		got, err := columnsFromCanonical(canon)
		if err != nil {
			t.Fatalf("canonical bytes %q: %v", canon, err)
		}
		if d := columnsOf(&e).diff(got); d != "" {
			t.Fatalf("column %s differs for %q: extracted %+v, stored %+v", d, canon, got, columnsOf(&e))
		}
		// The in-place comparison Verify runs agrees.
		sc := storedColumns{id: []byte(e.ID), kind: []byte(e.Kind), workflow: []byte(e.Workflow), caller: []byte(e.Caller),
			callee: []byte(e.Callee), decision: []byte(e.Decision), action: []byte(e.Action), reason: []byte(e.Reason), timeNS: e.Time.UnixNano()}
		if col, err := sc.check(canon); err != nil || col != "" {
			t.Fatalf("check of %q: column %q, %v", canon, col, err)
		}
		sc.timeNS++
		if col, _ := sc.check(canon); col != "time" {
			t.Fatalf("a time one nanosecond off: %q", col)
		}
	})
}
