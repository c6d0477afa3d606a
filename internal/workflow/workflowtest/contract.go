// Package workflowtest is the contract every workflow.Store passes (memory, Redis, the
// control plane's SQL tables and its API).
package workflowtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"

	"github.com/warden-a2a/warden/internal/workflow"
)

// Callees are the two gate identities the contract records steps as.
var Callees = [2]string{"spiffe://supplychain.example/agent/payment-release", "spiffe://supplychain.example/agent/legacy-erp"}

// Open returns a store whose steps are recorded as callee (a store behind the control
// plane's API records them as its client's identity, which must then be callee).
type Open func(t *testing.T, callee string) workflow.Store

func token() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "dec_" + hex.EncodeToString(b[:])
}

// Run runs the contract. Each subtest uses fresh workflow ids, so stores may be shared.
func Run(t *testing.T, open Open) {
	ctx := context.Background()
	run := token() // a fresh workflow id per run of the contract
	step := func(callee, id, action, res string, after ...workflow.Pred) workflow.Step {
		return workflow.Step{Workflow: "procure-to-pay", ID: run + "-" + id, Action: action, Resource: res, Callee: callee,
			After: after, Enforce: true, Token: token()}
	}
	submit := workflow.Pred{Action: "invoice.submit", Callees: []string{Callees[0]}}
	begin := func(t *testing.T, s workflow.Store, st workflow.Step, want string) {
		t.Helper()
		got, err := s.Begin(ctx, st)
		if err != nil || got != want {
			t.Fatalf("Begin %s %s %s: %q, %v; want %q", st.ID, st.Action, st.Resource, got, err, want)
		}
	}
	pay, inv := open(t, Callees[0]), open(t, Callees[1])
	_ = pay

	t.Run("duplicate-refused", func(t *testing.T) {
		s := open(t, Callees[1])
		begin(t, s, step(Callees[1], "d", "payment.release", "Invoice/INV-7"), "")
		second := step(Callees[1], "d", "payment.release", "Invoice/INV-7")
		begin(t, s, second, workflow.Duplicate)
		begin(t, s, step(Callees[1], "d", "payment.release", "Invoice/INV-8"), "") // another resource
		begin(t, s, step(Callees[1], "d2", "payment.release", "Invoice/INV-7"), workflow.Duplicate)
	})
	t.Run("repeatable", func(t *testing.T) {
		a := step(Callees[1], "r", "shipment.status", "Shipment/S-1")
		a.Repeatable = true
		b := a
		b.Token = token()
		begin(t, inv, a, "")
		begin(t, inv, b, "")
	})
	t.Run("out-of-order", func(t *testing.T) {
		begin(t, inv, step(Callees[1], "o", "payment.release", "Invoice/INV-9", submit), workflow.OutOfOrder)
		// recorded by a callee the catalog does not name for invoice.submit: still out of order
		begin(t, inv, step(Callees[1], "o", "invoice.submit", "Invoice/INV-9"), "")
		begin(t, inv, step(Callees[1], "o", "payment.release", "Invoice/INV-9", submit), workflow.OutOfOrder)
		begin(t, pay, step(Callees[0], "o", "invoice.submit", "Invoice/INV-9"), "")
		begin(t, inv, step(Callees[1], "o", "payment.release", "Invoice/INV-9", submit), "")
		// another workflow id does not inherit the predecessor
		begin(t, inv, step(Callees[1], "o-other", "payment.release", "Invoice/INV-10", submit), workflow.OutOfOrder)
		// a predecessor with no callees named: any gate's record counts
		begin(t, inv, step(Callees[1], "o", "payment.release", "Invoice/INV-11", workflow.Pred{Action: "invoice.submit"}), "")
	})
	t.Run("enforced-refusal-records-nothing", func(t *testing.T) {
		begin(t, inv, step(Callees[1], "e", "payment.release", "Invoice/INV-12", submit), workflow.OutOfOrder)
		// had the refused step been recorded, this one would be a duplicate
		begin(t, pay, step(Callees[0], "e", "invoice.submit", "Invoice/INV-12"), "")
		begin(t, inv, step(Callees[1], "e", "payment.release", "Invoice/INV-12", submit), "")
	})
	t.Run("observe-records-and-reports", func(t *testing.T) {
		st := step(Callees[1], "w", "payment.release", "Invoice/INV-13", submit)
		st.Enforce = false
		begin(t, inv, st, workflow.OutOfOrder) // reported, recorded
		again := step(Callees[1], "w", "payment.release", "Invoice/INV-13")
		begin(t, inv, again, workflow.Duplicate)
	})
	t.Run("release-lets-a-retry-run", func(t *testing.T) {
		first := step(Callees[1], "f", "payment.release", "Invoice/INV-14")
		begin(t, inv, first, "")
		if err := inv.Finish(ctx, first, false); err != nil {
			t.Fatal(err)
		}
		retry := step(Callees[1], "f", "payment.release", "Invoice/INV-14")
		begin(t, inv, retry, "")
		if err := inv.Finish(ctx, retry, true); err != nil {
			t.Fatal(err)
		}
		begin(t, inv, step(Callees[1], "f", "payment.release", "Invoice/INV-14"), workflow.Duplicate)
		// a released predecessor no longer counts
		sub := step(Callees[0], "f2", "invoice.submit", "Invoice/INV-15")
		begin(t, pay, sub, "")
		if err := pay.Finish(ctx, sub, false); err != nil {
			t.Fatal(err)
		}
		begin(t, inv, step(Callees[1], "f2", "payment.release", "Invoice/INV-15", submit), workflow.OutOfOrder)
	})
	t.Run("concurrent-duplicates-exactly-one-wins", func(t *testing.T) {
		const n = 16
		var wg sync.WaitGroup
		results := make(chan string, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := open(t, Callees[1]).Begin(ctx, step(Callees[1], "c", "payment.release", "Invoice/INV-16"))
				if err != nil {
					v = "error: " + err.Error()
				}
				results <- v
			}()
		}
		wg.Wait()
		close(results)
		won := 0
		for v := range results {
			switch v {
			case "":
				won++
			case workflow.Duplicate:
			default:
				t.Errorf("concurrent Begin: %q", v)
			}
		}
		if won != 1 {
			t.Errorf("%d of %d concurrent identical steps won, want exactly 1", won, n)
		}
	})
	t.Run("invalid-step", func(t *testing.T) {
		for _, st := range []workflow.Step{
			{Workflow: "w", ID: "", Action: "a", Callee: Callees[1], Token: token()},
			{Workflow: "w", ID: "x\ny", Action: "a", Callee: Callees[1], Token: token()},
			{Workflow: "w", ID: "x", Action: "a", Callee: Callees[1]},
		} {
			if _, err := inv.Begin(ctx, st); err == nil || errors.Is(err, workflow.ErrUnavailable) {
				t.Errorf("Begin %+v: %v, want a validation error", st, err)
			}
		}
	})
}
