package gate_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/truststate"
)

// TestReplayAcrossReplicas: two gate replicas of one agent share a Redis replay cache;
// an intent accepted by one is refused as a replay by the other.
func TestReplayAcrossReplicas(t *testing.T) {
	u := os.Getenv("WARDEN_TEST_REDIS")
	if u == "" {
		t.Skip("WARDEN_TEST_REDIS not set (e.g. redis://127.0.0.1:6379/0); skipping the shared replay cache test")
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	t.Cleanup(func() { rc.Close() })
	var p [8]byte
	_, _ = rand.Read(p[:])
	prefix := "warden:test:gate:" + hex.EncodeToString(p[:]) + ":"
	e := newEnv(t)
	ag := startAgent(t)
	var addrs []string
	for i := 0; i < 2; i++ {
		g, _ := e.inbound(ag.url, func(c *gate.Config) { c.Replay = intent.NewRedisCache(rc, prefix) })
		addrs = append(addrs, startGate(t, g, "tcp"))
	}
	proc := e.svid("/agent/procurement")
	body := rpcBody("purchase_order.create", "Order/PO-1")
	c0, c1 := e.caller(t, addrs[0], proc), e.caller(t, addrs[1], proc)
	tok := c0.sign(poIntent(), body)
	if _, a := c0.do(body, tok); a.Error != nil {
		t.Fatalf("replica 0: %+v", a.Error)
	}
	if _, a := c1.do(body, tok); a.Error == nil || a.Error.reason() != "replay" {
		t.Fatalf("replica 1 accepted the same intent: %+v", a.Error)
	}
}

// TestQuarantinedCallerReadsOnly: role-aware fail-closed — a quarantined caller keeps
// reads and loses writes, decided from the trust state.
func TestQuarantinedCallerReadsOnly(t *testing.T) {
	e := newEnv(t)
	g, _ := e.inbound(startAgent(t).url, nil)
	proc := e.svid("/agent/procurement")
	c := e.caller(t, startGate(t, g, "tcp"), proc)
	e.publish(func(d *truststate.Document) {
		d.Agents = map[string]truststate.AgentState{proc.ID.String(): {Status: truststate.StatusQuarantined, Reason: "drift"}}
	})
	write := rpcBody("purchase_order.create", "Order/PO-1")
	if _, a := c.do(write, c.sign(poIntent(), write)); a.Error == nil || a.Error.reason() != "agent_quarantined" {
		t.Errorf("quarantined write: %+v", a.Error)
	}
	read := rpcBody("purchase_order.read", "Order/PO-1")
	in := poIntent()
	in.Action = "purchase_order.read"
	if _, a := c.do(read, c.sign(in, read)); a.Error != nil {
		t.Errorf("quarantined read refused: %+v", a.Error)
	}
}

// TestReviewHoldsAtTheGate: a caller the trust state holds for review keeps its reads
// and is refused every other action (agent_under_review), audited, even with a fresh
// affirming attestation and whatever the policies permit; restored, it writes again.
func TestReviewHoldsAtTheGate(t *testing.T) {
	e := newEnv(t)
	ag := startAgent(t)
	g, _ := e.inbound(ag.url, nil)
	proc := e.svid("/agent/procurement")
	c := e.caller(t, startGate(t, g, "tcp"), proc)
	hold := func(d *truststate.Document) {
		d.Agents = map[string]truststate.AgentState{proc.ID.String(): {Status: truststate.StatusReview, Reason: "attestation tampered_binary"}}
	}
	e.publish(hold) // the attestation stays affirming (publish's default)
	write := rpcBody("purchase_order.create", "Order/PO-1")
	seen := len(ag.seen)
	_, a := c.do(write, c.sign(poIntent(), write))
	if a.Error == nil || a.Error.reason() != gate.ReasonAgentUnderReview {
		t.Fatalf("write under review: %+v", a.Error)
	}
	if ev := e.events.last(); ev.Allow || ev.Reason != gate.ReasonAgentUnderReview || ev.Action != "purchase_order.create" {
		t.Errorf("audit event %+v", ev)
	}
	if len(ag.seen) != seen {
		t.Errorf("the agent received the held write")
	}
	read := rpcBody("purchase_order.read", "Order/PO-1")
	in := poIntent()
	in.Action = "purchase_order.read"
	if _, a := c.do(read, c.sign(in, read)); a.Error != nil {
		t.Errorf("read under review refused: %+v", a.Error)
	}
	e.publish(func(*truststate.Document) {}) // an operator restored it
	if _, a := c.do(write, c.sign(poIntent(), write)); a.Error != nil {
		t.Errorf("write after restore: %+v", a.Error)
	}
}
