package gate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/gate/legacy"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// erp is a legacy system over plain HTTP behind legacy.Verifier.
type erp struct {
	url     string
	mu      sync.Mutex
	calls   []*legacy.Claims
	headers []http.Header     // of each call the verifier let through
	refused map[string]string // decision id -> reason, from Verifier.OnRefuse
}

func startERP(t *testing.T, pub *ecdsa.PublicKey) *erp {
	e := &erp{refused: map[string]string{}}
	v := &legacy.Verifier{Key: pub, Audience: "erp", OnRefuse: func(_ *http.Request, id string, err *legacy.Error) {
		e.mu.Lock()
		e.refused[id] = err.Reason
		e.mu.Unlock()
	}}
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := legacy.FromContext(r.Context())
		e.mu.Lock()
		e.calls = append(e.calls, c)
		e.headers = append(e.headers, r.Header.Clone())
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"1","result":{"message":{"role":"ROLE_AGENT","parts":[{"text":"booked"}],"messageId":"m1"}}}`))
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	e.url = "http://" + ln.Addr().String()
	return e
}

// TestLegacyGate: a verified call reaches the ERP with a one-action JWT for it; a direct
// call, a replayed credential and a credential for another system are refused by the ERP.
func TestLegacyGate(t *testing.T) {
	e := newEnv(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sys := startERP(t, &key.PublicKey)
	g, _ := e.inbound(sys.url, func(c *gate.Config) {
		c.Mode, c.LegacyKey, c.LegacyAudience, c.Card = gate.ModeLegacy, key, "erp", nil
	})
	c := e.caller(t, startGate(t, g, "tcp"), e.svid("/agent/procurement"))
	body := rpcBody("purchase_order.create", "Order/PO-1")
	if _, a := c.do(body, c.sign(poIntent(), body)); a.Error != nil {
		t.Fatalf("through the legacy gate: %+v", a.Error)
	}
	if len(sys.calls) != 1 || sys.calls[0].Action != "purchase_order.create" || sys.calls[0].Subject != agentID("procurement").String() {
		t.Fatalf("ERP saw %+v", sys.calls)
	}
	cl := sys.calls[0]
	if ttl := cl.Expiry.Time().Sub(cl.IssuedAt.Time()); ttl > 60*time.Second || cl.ID == "" {
		t.Errorf("credential ttl %v jti %q", ttl, cl.ID)
	}

	direct := func(auth string) string {
		req, _ := http.NewRequest(http.MethodPost, sys.url+"/", strings.NewReader(string(body)))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]string
		_ = json.NewDecoder(res.Body).Decode(&out)
		if res.StatusCode != http.StatusUnauthorized {
			return "status " + res.Status
		}
		// The refusal carries a decision id, in the body and the header, that the
		// system's own record (OnRefuse) holds with the same reason.
		id := out["decision_id"]
		sys.mu.Lock()
		recorded := sys.refused[id]
		sys.mu.Unlock()
		if !strings.HasPrefix(id, "dec_") || res.Header.Get(gate.HeaderDecisionID) != id || recorded != out["error"] {
			t.Errorf("refusal decision id %q (header %q), recorded reason %q for %q", id, res.Header.Get(gate.HeaderDecisionID), recorded, out["error"])
		}
		return out["error"]
	}
	if got := direct(""); got != legacy.ReasonMissing {
		t.Errorf("direct call without credential: %s", got)
	}
	// A credential signed by someone else.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	og, _ := e.inbound(sys.url, func(c *gate.Config) {
		c.Mode, c.LegacyKey, c.LegacyAudience, c.Card = gate.ModeLegacy, other, "erp", nil
	})
	oc := e.caller(t, startGate(t, og, "tcp"), e.svid("/agent/procurement"))
	_, a := oc.do(body, oc.sign(poIntent(), body))
	if a.Error == nil {
		t.Errorf("a gate with another key got through")
	}
}

// TestLegacyVerifierRefusals: table of forged downstream credentials.
func TestLegacyVerifierRefusals(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	mint := func(aud string, ttl time.Duration, act string) string {
		tok, err := gate.MintLegacyToken(key, "spiffe://supplychain.example/gate/erp", "spiffe://supplychain.example/agent/procurement", aud, act, "Order/1", now, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint("erp", 30*time.Second, "purchase_order.create")
	v := &legacy.Verifier{Key: &key.PublicKey, Audience: "erp", Now: func() time.Time { return now }}
	check := func(tok string) string {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		_, err := v.Verify(r)
		var le *legacy.Error
		if errors.As(err, &le) {
			return le.Reason
		}
		return "ok"
	}
	if got := check(good); got != "ok" {
		t.Fatalf("good credential: %s", got)
	}
	for _, tc := range []struct{ name, tok, want string }{
		{"replayed credential", good, legacy.ReasonReplay},
		{"credential for another system", mint("billing", 30*time.Second, "x"), legacy.ReasonAudience},
		{"lifetime over 60s", mint("erp", 2*time.Minute, "x"), legacy.ReasonExpired},
		{"no action", mint("erp", 30*time.Second, ""), legacy.ReasonNoAction},
		{"garbage", "abc.def.ghi", legacy.ReasonMalformed},
		{"tampered signature", good[:len(good)-4] + "AAAA", legacy.ReasonSignature},
	} {
		if got := check(tc.tok); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestOfflineStaleness: with the trust state older than the zone's max_staleness, reads
// go on (audited stale) and writes fail closed.
func TestOfflineStaleness(t *testing.T) {
	e := newEnv(t)
	clock := time.Now()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	e.trust = truststate.NewFollower(truststate.FollowerConfig{Bundle: e.ca.X509Bundle(), TrustDomain: td, Now: now})
	e.publish(func(d *truststate.Document) {
		d.Zones = map[string]truststate.Zone{"cloud": {State: truststate.ZoneHealthy, MaxStaleness: "2m"}}
	})
	g, _ := e.inbound(startAgent(t).url, func(c *gate.Config) { c.Now = now })
	c := e.caller(t, startGate(t, g, "tcp"), e.svid("/agent/procurement"))
	write := rpcBody("purchase_order.create", "Order/PO-1")
	read := rpcBody("purchase_order.read", "Order/PO-1")
	readIntent := poIntent()
	readIntent.Action = "purchase_order.read"
	if _, a := c.do(write, c.sign(poIntent(), write)); a.Error != nil {
		t.Fatalf("fresh write: %+v", a.Error)
	}
	mu.Lock()
	clock = clock.Add(3 * time.Minute)
	mu.Unlock()
	// Intents are verified against the gate's clock: sign them at the gate's time.
	sign := func(in sdk.Intent, b []byte) string {
		tok, _ := sdk.SignIntent(c.svid.Certificates[0], c.svid.PrivateKey, in, b, now())
		return tok
	}
	if _, a := c.do(write, sign(poIntent(), write)); a.Error == nil || a.Error.reason() != gate.ReasonTrustStale {
		t.Errorf("stale write: %+v", a.Error)
	}
	if _, a := c.do(read, sign(readIntent, read)); a.Error != nil {
		t.Errorf("stale read refused: %+v", a.Error)
	}
	if ev := e.events.last(); !ev.Allow || !ev.Stale {
		t.Errorf("stale read not audited as stale: %+v", ev)
	}
}

// TestRestartFromCache: a gate restarted with the control plane down enforces the
// trust state it persisted — including a revocation.
func TestRestartFromCache(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "trust-state.json")
	cache, err := gate.OpenTrustCache(path, e.ca.X509Bundle(), td, nil)
	if err != nil {
		t.Fatal(err)
	}
	proc := e.svid("/agent/procurement")
	e.trust = truststate.NewFollower(truststate.FollowerConfig{Bundle: e.ca.X509Bundle(), TrustDomain: td, OnAccept: cache.Store})
	e.publish(func(d *truststate.Document) {
		d.RevokedIDs = map[string]truststate.Revocation{proc.ID.String(): {Reason: "stolen"}}
	})

	// "Restart": a new cache from the file, no follower, no control plane.
	restarted, err := gate.OpenTrustCache(path, e.ca.X509Bundle(), td, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := restarted.Current()
	if doc == nil || doc.Version != e.ver {
		t.Fatalf("restarted cache holds %+v", doc)
	}
	g, _ := e.inbound(startAgent(t).url, func(c *gate.Config) { c.Trust = restarted })
	addr := startGate(t, g, "tcp")
	c := e.caller(t, addr, proc)
	body := rpcBody("purchase_order.create", "Order/PO-1")
	if _, a := c.do(body, c.sign(poIntent(), body)); a.Error == nil || a.Error.reason() != gate.ReasonIdentityRevoked {
		t.Errorf("revoked caller after restart: %+v", a.Error)
	}
	ok := e.caller(t, addr, e.svid("/agent/procurement-2"))
	_ = ok

	// A cache file that was tampered with is not used: the gate holds no trust state
	// and refuses everything.
	b := readFile(t, path)
	writeFile(t, path, []byte(strings.Replace(string(b), `"signed":"ey`, `"signed":"eX`, 1)))
	tampered, _ := gate.OpenTrustCache(path, e.ca.X509Bundle(), td, nil)
	if d, _ := tampered.Current(); d != nil {
		t.Errorf("tampered cache accepted")
	}
}

// TestAgentCard: the card is served signed by the gate's SVID, declares mtls and the
// intent extension, verifies for the right SPIFFE ID only, and any change breaks it.
func TestAgentCard(t *testing.T) {
	e := newEnv(t)
	g, _ := e.inbound(startAgent(t).url, nil)
	c := e.caller(t, startGate(t, g, "tcp"), e.svid("/agent/procurement"))
	res, err := c.client.Get(c.url + "/.well-known/agent-card.json")
	if err != nil {
		t.Fatal(err)
	}
	raw := readAll(t, res)
	gateID := spiffeid.RequireFromPath(td, "/gate/vendor-portal")
	card, err := gate.VerifyCard(raw, e.ca.X509Bundle(), gateID)
	if err != nil {
		t.Fatalf("VerifyCard: %v", err)
	}
	if _, ok := card.SecuritySchemes["mtls"]; !ok || len(card.Capabilities.Extensions) == 0 || card.Capabilities.Extensions[0].URI != gate.IntentExtensionURI {
		t.Errorf("card lacks mtls or the intent extension: %s", raw)
	}
	if _, err := gate.VerifyCard(raw, e.ca.X509Bundle(), agentID("impostor")); !errors.Is(err, gate.ErrCardSigner) {
		t.Errorf("card verified for another identity: %v", err)
	}
	tampered := []byte(strings.Replace(string(raw), `"vendor portal"`, `"evil portal"`, 1))
	if _, err := gate.VerifyCard(tampered, e.ca.X509Bundle(), gateID); !errors.Is(err, gate.ErrCardSignature) {
		t.Errorf("tampered card: %v", err)
	}
}

// approvalsFake is a small in-memory approvals service (the real client comes from the
// approvals branch); it files requests and lets the test approve them.
type approvalsFake struct {
	mu       sync.Mutex
	byID     map[string]string // id -> intent hash
	approved map[string][]string
}

func (a *approvalsFake) Approval(_ context.Context, req gate.ApprovalRequest) (gate.ApprovalState, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if req.ID == "" {
		id := "apr_" + req.IntentHash[:8]
		a.byID[id] = req.IntentHash
		return gate.ApprovalState{ID: id}, nil
	}
	if a.byID[req.ID] != req.IntentHash {
		return gate.ApprovalState{}, gate.ErrApprovalInvalid
	}
	return gate.ApprovalState{ID: req.ID, Approvers: a.approved[req.ID]}, nil
}

// TestApprovalFlow: a large purchase-order approval files an approval and is refused with
// its id; after approval the retry with apr passes; apr for another request is refused.
func TestApprovalFlow(t *testing.T) {
	e := newEnv(t)
	ap := &approvalsFake{byID: map[string]string{}, approved: map[string][]string{}}
	g, _ := e.inbound(startAgent(t).url, func(c *gate.Config) { c.Approvals = ap })
	c := e.caller(t, startGate(t, g, "tcp"), e.svid("/agent/procurement"))
	mk := func(amount int) []byte {
		return []byte(`{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"m` +
			time.Now().Format("150405.000000000") + `","parts":[{"text":"approve"}],"metadata":{"warden.amount":` + itoa(amount) + `,"warden.currency":"EUR"}}}}`)
	}
	in := poIntent()
	in.Action, in.Resource = "purchase_order.approve", "Order/PO-9"
	body := mk(90000)
	_, a := c.do(body, c.sign(in, body))
	if a.Error == nil || a.Error.reason() != gate.ReasonApprovalRequired {
		t.Fatalf("first call: %+v", a.Error)
	}
	id := a.Error.Data[0].Metadata["approval_id"]
	if id == "" {
		t.Fatal("no approval id")
	}
	ap.mu.Lock()
	ap.approved[id] = []string{"alice@example"}
	ap.mu.Unlock()
	in.Approval = id
	body = mk(90000)
	if _, a := c.do(body, c.sign(in, body)); a.Error != nil {
		t.Fatalf("retry with apr: %+v", a.Error)
	}
	// The same approval id for a different amount is another request.
	body = mk(95000)
	if _, a := c.do(body, c.sign(in, body)); a.Error == nil || a.Error.reason() != gate.ReasonApprovalInvalid {
		t.Errorf("apr reused for another amount: %+v", a.Error)
	}
}

// TestNoApprovalsRefuses: the default approvals service refuses: no fake approvals.
func TestNoApprovalsRefuses(t *testing.T) {
	e := newEnv(t)
	g, _ := e.inbound(startAgent(t).url, nil)
	c := e.caller(t, startGate(t, g, "tcp"), e.svid("/agent/procurement"))
	in := poIntent()
	in.Action, in.Resource = "purchase_order.approve", "Order/PO-9"
	body := []byte(`{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"role":"ROLE_USER","messageId":"x","parts":[{"text":"a"}],"metadata":{"warden.amount":90000,"warden.currency":"EUR"}}}}`)
	if _, a := c.do(body, c.sign(in, body)); a.Error == nil || a.Error.reason() != gate.ReasonApprovalsDown {
		t.Errorf("got %+v", a.Error)
	}
}

// TestKeepConfirmed: an unchanged trust state, re-fetched, counts as confirmed: its age
// goes back to zero, so a quiet control plane is not taken for an unreachable one.
func TestKeepConfirmed(t *testing.T) {
	e := newEnv(t)
	clock := time.Now()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	f := truststate.NewFollower(truststate.FollowerConfig{Bundle: e.ca.X509Bundle(), TrustDomain: td, Now: now})
	signed, err := truststate.Sign(&truststate.Document{TrustDomain: td.Name(), Version: 3, IssuedAt: time.Now()}, e.srvKey, e.srvCh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Accept(signed); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/trust-state" {
			_, _ = w.Write(signed)
		}
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	mu.Lock()
	clock = clock.Add(10 * time.Minute)
	mu.Unlock()
	if _, age := f.Current(); age < 10*time.Minute {
		t.Fatalf("age %v before confirmation", age)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go gate.KeepConfirmed(ctx, f, "http://"+ln.Addr().String(), http.DefaultClient, 20*time.Millisecond)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, age := f.Current(); age < time.Minute {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the unchanged trust state was never confirmed again")
}
