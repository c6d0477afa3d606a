package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2asrv"

	"github.com/warden-a2a/warden/internal/gate/legacy"
)

// OrderAgent is an a2a-go agent's logic (vendor-portal, treasury): it acknowledges a
// message; a message with metadata "as_task" becomes a task that goes working ->
// completed.
type OrderAgent struct{ Name string }

// Execute implements a2asrv.AgentExecutor.
func (o OrderAgent) Execute(_ context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		if ec.StoredTask == nil && ec.Message != nil && ec.Message.Metadata["as_task"] == nil {
			yield(a2a.NewMessage(a2a.MessageRoleAgent, a2a.NewTextPart(o.Name+": acknowledged")), nil)
			return
		}
		if !yield(a2a.NewSubmittedTask(ec, ec.Message), nil) || !yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateWorking, nil), nil) {
			return
		}
		yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateCompleted, a2a.NewMessage(a2a.MessageRoleAgent, a2a.NewTextPart(o.Name+": confirmed"))), nil)
	}
}

// Cancel implements a2asrv.AgentExecutor.
func (OrderAgent) Cancel(context.Context, *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(func(a2a.Event, error) bool) {}
}

// ServeA2A serves an unmodified a2a-go JSON-RPC server for exec on a unix socket at path
// (mode 0600, in a directory only this user reads: the gate is the one way in,
// docs/gate.md "The agent on a unix socket") and returns the gate's upstream for it,
// unix://PATH.
func ServeA2A(path string, exec a2asrv.AgentExecutor, observe ...func(*http.Request)) (upstream string, stop func(), err error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return "", nil, err
	}
	h := a2asrv.NewJSONRPCHandler(a2asrv.NewHandler(exec))
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, o := range observe {
			o(r)
		}
		h.ServeHTTP(w, r)
	})}
	go func() { _ = hs.Serve(ln) }()
	return "unix://" + path, func() { _ = hs.Close() }, nil
}

// DecisionIDs records the Warden-Decision-Id of every answer a client received.
type DecisionIDs struct {
	mu   sync.Mutex
	ids  []string
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper. A request without a W3C traceparent gets one
// that starts a new trace, as an instrumented agent's client would send: both gates then
// decide the call under that trace id.
func (d *DecisionIDs) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("traceparent") == "" {
		var ids [24]byte
		_, _ = rand.Read(ids[:])
		r = r.Clone(r.Context())
		r.Header.Set("traceparent", fmt.Sprintf("00-%x-%x-01", ids[:16], ids[16:]))
	}
	res, err := d.next.RoundTrip(r)
	if err == nil {
		if id := res.Header.Get("Warden-Decision-Id"); id != "" {
			d.mu.Lock()
			d.ids = append(d.ids, id)
			d.mu.Unlock()
		}
	}
	return res, err
}

// Last returns the newest decision id ("" before any).
func (d *DecisionIDs) Last() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.ids) == 0 {
		return ""
	}
	return d.ids[len(d.ids)-1]
}

// OutboundClient is an unmodified a2a-go JSON-RPC client of the agent behind an outbound
// gate listening on the unix socket sock: what the local agent runs. The returned
// DecisionIDs sees the remote gate's decision id on every answer.
func OutboundClient(ctx context.Context, sock string) (*a2aclient.Client, *DecisionIDs, error) {
	ids := &DecisionIDs{next: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: ids}
	c, err := a2aclient.NewFromEndpoints(ctx,
		[]*a2a.AgentInterface{a2a.NewAgentInterface("http://outbound-gate/", a2a.TransportProtocolJSONRPC)},
		a2aclient.WithJSONRPCTransport(hc))
	return c, ids, err
}

// ServeERP serves the legacy ERP (plain HTTP, loopback) behind legacy.Verifier holding
// the legacy gate's public key; refusals go to logger under the decision id the caller
// is answered with. It books whatever the gate-minted credential allows.
func ServeERP(pub *ecdsa.PublicKey, logger *slog.Logger) (url string, stop func(), err error) {
	v := &legacy.Verifier{Key: pub, Audience: "erp", OnRefuse: func(r *http.Request, id string, err *legacy.Error) {
		logger.Warn("erp: refused a call without a gate-minted credential", "decision_id", id, "reason", err.Reason, "remote", r.RemoteAddr)
	}}
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := legacy.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":"1","result":{"message":{"role":"ROLE_AGENT","messageId":"erp-1","parts":[{"text":"ERP booked %s for %s"}]}}}`, c.Action, c.Subject)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: h}
	go func() { _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = hs.Close() }, nil
}
