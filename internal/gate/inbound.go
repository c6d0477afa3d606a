package gate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-a2a/warden/internal/federation"
	"github.com/warden-a2a/warden/internal/intent"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/telemetry"
	"github.com/warden-a2a/warden/internal/truststate"
)

// Gate is one running gate. Build it with New; serve Handler() behind the TLS listener
// that Serve sets up.
type Gate struct {
	cfg      Config
	verifier *intent.Verifier
	proxy    *httputil.ReverseProxy
	handler  http.Handler
	card     *cardSigner
	classify *Classifier
	steps    map[string]*wfStep          // workflow steps of the catalog, by action
	actions  atomic.Pointer[actionIndex] // actions of the engine last seen
	view     atomic.Pointer[viewCache]   // policy view of the trust state last seen
	bundles  *federation.Source          // own bundle + federated ones (federation.go)
	partners partnerChains               // partner chains verified per trust-state version
}

// viewCache is the policy.TrustView of one verified trust-state document. Documents
// never change once verified, so the view is built once per version, not per request
// (it copies every agent's status).
type viewCache struct {
	doc  *truststate.Document
	view policy.TrustView
}

// trustViewOf returns the policy view of doc, building it only when doc is new.
func (g *Gate) trustViewOf(doc *truststate.Document) policy.TrustView {
	if c := g.view.Load(); c != nil && c.doc == doc {
		return c.view
	}
	c := &viewCache{doc: doc, view: trustView(doc, g.cfg.Zone)}
	g.view.Store(c)
	return c.view
}

// actionIndex maps action names to their schema info for one engine; rebuilt when the
// policy holder swaps in another engine.
type actionIndex struct {
	eng *policy.Engine
	m   map[string]policy.ActionInfo
}

// action returns the schema info of name on the current engine.
func (g *Gate) action(name string) (policy.ActionInfo, bool) {
	e := g.cfg.Policy.Engine()
	if e == nil {
		return policy.ActionInfo{}, false
	}
	idx := g.actions.Load()
	if idx == nil || idx.eng != e {
		idx = &actionIndex{eng: e, m: map[string]policy.ActionInfo{}}
		for _, a := range e.Actions() {
			idx.m[a.Name] = a
		}
		g.actions.Store(idx)
	}
	a, ok := idx.m[name]
	return a, ok
}

// New validates cfg and returns a Gate.
func New(cfg Config) (*Gate, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Gate{}
	g.bundles = federate(&cfg)
	g.cfg = cfg
	g.steps = indexWorkflows(cfg.Workflows)
	var err error
	if g.classify, err = NewClassifier(cfg.Routes); err != nil {
		return nil, err
	}
	if cfg.Mode != ModeOutbound {
		g.verifier, err = intent.NewVerifier(intent.Config{Audience: cfg.Self.String(), Replay: cfg.Replay, MaxLifetime: cfg.MaxIntentTTL})
		if err != nil {
			return nil, err
		}
		switch {
		case cfg.CardUpstream != nil:
			target, rt := g.upstreamTarget()
			uc, err := newUpstreamCard(cfg.CardUpstream, target, rt)
			if err != nil {
				return nil, err
			}
			g.card = &cardSigner{source: uc.get, svid: cfg.SVID, log: cfg.Logger}
		case cfg.Card != nil:
			g.card = &cardSigner{source: staticCard(cfg.Card), svid: cfg.SVID, log: cfg.Logger}
		}
	}
	g.proxy, err = g.newProxy()
	if err != nil {
		return nil, err
	}
	// No http.ServeMux in front of the pipeline: it would answer an unclean path
	// ("//x", "/a/../b") with a redirect of its own, unaudited. The card is the one
	// exact path served beside it; everything else is a call to judge.
	serve, card := http.Handler(http.HandlerFunc(g.serveInbound)), http.Handler(nil)
	if g.card != nil {
		card = g.card
	}
	if cfg.Mode == ModeOutbound {
		serve, card = http.HandlerFunc(g.serveOutbound), http.HandlerFunc(g.serveRemoteCard)
	}
	g.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if card != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.EscapedPath() == cardPath {
			card.ServeHTTP(w, r)
			return
		}
		serve.ServeHTTP(w, r)
	})
	return g, nil
}

// Handler is the gate's HTTP handler (for tests and embedding; Serve uses it).
func (g *Gate) Handler() http.Handler { return g.handler }

// upstreamTarget is the base URL requests to the upstream go to and the transport that
// reaches it (a unix socket: HTTP/1.1 with Host "agent").
func (g *Gate) upstreamTarget() (url.URL, *http.Transport) {
	u, _ := url.Parse(g.cfg.Upstream)
	tr := &http.Transport{
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // streams: the agent decides when to answer
		ForceAttemptHTTP2:     false,
	}
	target := *u
	if u.Scheme == "unix" {
		sock := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		target = url.URL{Scheme: "http", Host: "agent"}
	}
	return target, tr
}

// newProxy builds the reverse proxy to the upstream: plain HTTP (inbound, legacy) or
// mTLS with the gate's SVID (outbound). Streams pass through unbuffered.
func (g *Gate) newProxy() (*httputil.ReverseProxy, error) {
	target, tr := g.upstreamTarget()
	var rt http.RoundTripper = tr
	if g.cfg.Mode == ModeOutbound {
		rt = &svidTransport{cfg: g.cfg}
	}
	rt = bodyTransport{rt}
	p := &httputil.ReverseProxy{
		// Rewrite runs after ReverseProxy removed the hop-by-hop headers (and those
		// the caller named in Connection), so what is set here reaches the upstream.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&target)
			pr.Out.Host = target.Host
			st := stateOf(pr.Out)
			h := pr.Out.Header
			if st.peer != "" { // inbound, legacy
				h.Set(HeaderPeerID, st.peer)
				h.Set(HeaderDecisionID, st.decisionID)
			}
			if st.authorization != "" {
				h.Set("Authorization", st.authorization)
			}
			if st.intent != "" {
				h.Set(intent.HeaderName, st.intent)
			}
			telemetry.Inject(pr.Out.Context(), h) // traceparent: the agent continues this trace
		},
		Transport: rt,
		// The caller learns the decision id of an allowed call from the answer's header
		// (refusals carry it in the error too); whatever the upstream set is replaced.
		ModifyResponse: func(res *http.Response) error {
			res.Header.Del(HeaderPeerID)
			if st := stateOf(res.Request); st.decisionID != "" && g.cfg.Mode != ModeOutbound {
				res.Header.Set(HeaderDecisionID, st.decisionID)
			}
			return nil
		},
		// SSE (text/event-stream) and bodies of unknown length are flushed on every
		// write, with no buffering, whatever this says (ReverseProxy.flushInterval); a
		// body of known length goes out with its headers in one write. (-1 here would
		// flush the headers alone first, from a timer goroutine: one more write and
		// TLS record per call.)
		FlushInterval: 0,
		// Without a pool the proxy allocates a 32 KiB copy buffer per response: three
		// quarters of the gate's allocations, and the GC cycles they cause are its
		// latency tail.
		BufferPool: copyBuffers,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			st := stateOf(r)
			st.failed = true
			reason, msg := upstreamFailure(err)
			g.cfg.Logger.Warn("gate: upstream failed", "decision_id", st.decisionID, "reason", reason, "err", err)
			writeRefusal(w, st.call, Refusal{Status: http.StatusBadGateway, Reason: reason, Message: msg, DecisionID: st.decisionID})
		},
	}
	return p, nil
}

// copyBuffers recycles the reverse proxy's copy buffers across requests.
var copyBuffers httputil.BufferPool = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == 32<<10 {
		buf = buf[:cap(buf)]
		b.p.Put(&buf)
	}
}

type stateKey struct{}

// reqState travels with the forwarded request to the transport and the proxy's error
// handler.
type reqState struct {
	decisionID    string
	peer          string // inbound, legacy: the verified caller (Warden-Peer-Id)
	authorization string // legacy: "Bearer <JWT>" for the legacy system
	intent        string // outbound: the signed intent (Warden-Intent)
	call          *Call
	body          []byte // the whole request body, already read and checked
	failed        bool   // the upstream did not answer (ErrorHandler)
}

// bodyTransport hands the transport the request body as the in-memory reader it is.
// ReverseProxy wraps the body in a type of its own, which makes http.Transport flush the
// request headers alone before the body: two writes and two segments per call instead of
// one.
type bodyTransport struct{ next http.RoundTripper }

func (t bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if st := stateOf(r); len(st.body) > 0 && r.ContentLength == int64(len(st.body)) {
		out := *r // a RoundTripper must not modify the request it is given
		out.Body = io.NopCloser(bytes.NewReader(st.body))
		r = &out
	}
	return t.next.RoundTrip(r)
}

func stateOf(r *http.Request) *reqState {
	if s, ok := r.Context().Value(stateKey{}).(*reqState); ok {
		return s
	}
	return &reqState{}
}

// isRead reports whether action is in the schema's "read" group; unknown actions are not.
func (g *Gate) isRead(action string) bool {
	a, ok := g.action(action)
	return ok && slices.Contains(a.Groups, "read")
}

// resource builds the Cedar resource of a call. The type comes from the action (each
// action of the schema applies to one resource type); the id is res, with an optional
// "Type/" or `Type::"…"` prefix removed. Status and amount are the call's parameters
// resource_status and amount where the action declares them (bound to the intent by the
// body digest), else "open" and 0.
func (g *Gate) resource(action, res string, params map[string]any) policy.Resource {
	r := policy.Resource{ID: res, Status: "open"}
	r.Amount, _ = params["amount"].(int64)
	if s, ok := params["resource_status"].(string); ok {
		r.Status = s
	}
	if a, ok := g.action(action); ok && len(a.ResourceTypes) > 0 {
		r.Type = a.ResourceTypes[0]
	}
	if t, id, ok := strings.Cut(res, `::"`); ok && strings.HasSuffix(id, `"`) {
		if r.Type == "" {
			r.Type = t
		}
		r.ID = strings.TrimSuffix(id, `"`)
	} else if t, id, ok := strings.Cut(res, "/"); ok && id != "" {
		if r.Type == "" || strings.EqualFold(t, r.Type) {
			r.ID = id
		}
	}
	if r.ID == "" {
		r.ID = "*"
	}
	return r
}

func lastSegment(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// certSHA256 is the hex SHA-256 fingerprint of a certificate's DER.
func certSHA256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// initiator is who started the workflow: the original actor of the delegation chain
// (the innermost act), else the intent's issuer.
func initiator(c *intent.Claims) string {
	a := c.Delegation
	if a == nil {
		return c.Issuer
	}
	for a.Actor != nil {
		a = a.Actor
	}
	return a.Subject
}

// peerAgent returns the caller's attributes for the policy: the control plane's
// directory in the signed trust state first, then the gate's own peers: configuration
// (partners of other trust domains, or a gate with no control plane).
func peerAgent(peers map[string]policy.Agent, doc *truststate.Document, id string) (policy.Agent, bool) {
	if d, ok := doc.Directory[id]; ok {
		a := peers[id] // a configured entry may still mark the caller as a partner
		a.Name, a.Role, a.Class, a.Zone = d.Name, d.Role, d.Class, d.Zone
		return a, true
	}
	a, ok := peers[id]
	return a, ok
}
