package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"iter"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/server"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// staticTrust serves one verified trust-state document to a gate.
type staticTrust struct{ doc *truststate.Document }

func (s staticTrust) Current() (*truststate.Document, time.Duration) { return s.doc, 0 }

type decisions struct {
	mu  sync.Mutex
	evs []gate.Event
}

func (d *decisions) Record(_ context.Context, ev gate.Event) error {
	d.mu.Lock()
	d.evs = append(d.evs, ev)
	d.mu.Unlock()
	return nil
}

func (d *decisions) last() gate.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.evs[len(d.evs)-1]
}

type echoExecutor struct{}

func (echoExecutor) Execute(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		yield(a2a.NewMessage(a2a.MessageRoleAgent, a2a.NewTextPart("done")), nil)
	}
}

func (echoExecutor) Cancel(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {}
}

// TestReviewHoldsWhenChallengeIgnored (issue 13 item 4): a transactional agent whose
// binary was tampered with is held for review (contraindicated); it then ignores the
// next pushed challenge. The stale_evidence result is audited but does not replace the
// contraindicated one, the hold stays, and a real gate in front of an unmodified a2a-go
// agent, deciding on the control plane's trust state, refuses its writes
// (agent_under_review, audited) while its reads go on.
func TestReviewHoldsWhenChallengeIgnored(t *testing.T) {
	f := start(t, options{att: &server.AttestConfig{ChallengeTimeout: time.Second}})
	ctx := context.Background()
	a := f.attestedEntry(t, "logistics", "transactional", "shipping", 41)
	if err := f.enrollAttested(t, a); err != nil {
		t.Fatal(err)
	}
	id := mustSVID(a.src).ID.String()
	if err := os.WriteFile(a.bin, []byte("#!agent patched\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := a.src.Renew(ctx); sdk.AttestationReason(err) != "tampered_binary" {
		t.Fatalf("renewal with a tampered binary: %v", err)
	}
	held := trustDoc(t, f, a.src)
	caught := held.Attestations[id]
	if held.Status(id) != truststate.StatusReview || caught.Tier != "contraindicated" {
		t.Fatalf("after the tampered renewal: status %q, attestation %+v", held.Status(id), caught)
	}

	// The agent ignores the next challenge (nothing runs its source).
	if _, err := f.admin.Challenge(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, a.src, func(d *truststate.Document) bool { _, pending := d.Challenges[id]; return !pending })
	doc := trustDoc(t, f, a.src)
	if at := doc.Attestations[id]; at.Tier != "contraindicated" || at.ResultID != caught.ResultID || doc.Status(id) != truststate.StatusReview {
		t.Fatalf("after the ignored challenge: status %q, attestation %+v (was %+v)", doc.Status(id), at, caught)
	}

	// vendor-portal's gate, on this trust state, in front of an a2a-go agent.
	vendor := f.attestedEntry(t, "vendor-portal", "transactional", "vendor", 42)
	if err := f.enrollAttested(t, vendor); err != nil {
		t.Fatal(err)
	}
	agentLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var agentCalls int
	var mu sync.Mutex
	agentSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agentCalls++
		mu.Unlock()
		a2asrv.NewJSONRPCHandler(a2asrv.NewHandler(echoExecutor{})).ServeHTTP(w, r)
	})}
	go agentSrv.Serve(agentLn)
	t.Cleanup(func() { agentSrv.Close() })
	eng, err := policy.Load(filepath.Join("..", "..", "policies"), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	events := &decisions{}
	g, err := gate.New(gate.Config{Mode: gate.ModeInbound, Self: mustSVID(vendor.src).ID, SVID: vendor.src, Bundle: vendor.src,
		Upstream: "http://" + agentLn.Addr().String(), Policy: policy.NewHolder(eng), Trust: staticTrust{doc},
		Replay: intent.NewMemoryCache(1024), Audit: events})
	if err != nil {
		t.Fatal(err)
	}
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = g.Serve(gctx, gln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.MTLSClientConfig(a.src, a.src, tlsconfig.AuthorizeAny())}}
	defer client.CloseIdleConnections()
	call := func(action, resource string) (string, gate.Event) {
		t.Helper()
		msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart(action))
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": "1", "method": "SendMessage", "params": map[string]any{"message": msg}})
		sv := mustSVID(a.src)
		tok, err := sdk.SignIntent(sv.Certificates[0], sv.PrivateKey, sdk.Intent{Audience: mustSVID(vendor.src).ID.String(), Action: action, Resource: resource}, body, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, "https://"+gln.Addr().String()+"/", bytes.NewReader(body))
		req.Header.Set(sdk.IntentHeader, tok)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var ans struct {
			Error *struct {
				Data []struct {
					Metadata map[string]string `json:"metadata"`
				} `json:"data"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &ans)
		if ans.Error == nil || len(ans.Error.Data) == 0 {
			return "", events.last()
		}
		return ans.Error.Data[0].Metadata["reason"], events.last()
	}
	reason, ev := call("shipment.reroute", "Shipment/SH-7")
	if reason != gate.ReasonAgentUnderReview || ev.Allow || ev.Reason != gate.ReasonAgentUnderReview || ev.Peer != id {
		t.Errorf("write of the held agent: reason %q, event %+v", reason, ev)
	}
	mu.Lock()
	if agentCalls != 0 {
		t.Errorf("the agent received %d calls", agentCalls)
	}
	mu.Unlock()
	if reason, ev := call("shipment.status", "Shipment/SH-7"); reason == gate.ReasonAgentUnderReview || ev.Reason == gate.ReasonAgentUnderReview {
		t.Errorf("read of the held agent refused: %q %+v", reason, ev)
	}
}
