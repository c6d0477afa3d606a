package gate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

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
	actions  atomic.Pointer[actionIndex] // actions of the engine last seen
	view     atomic.Pointer[viewCache]   // policy view of the trust state last seen
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
	c := &viewCache{doc: doc, view: trustView(doc)}
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
	g := &Gate{cfg: cfg}
	var err error
	if cfg.Mode != ModeOutbound {
		g.verifier, err = intent.NewVerifier(intent.Config{Audience: cfg.Self.String(), Replay: cfg.Replay, MaxLifetime: cfg.MaxIntentTTL})
		if err != nil {
			return nil, err
		}
		if cfg.Card != nil {
			g.card = newCardSigner(cfg.Card, cfg.SVID)
		}
	}
	g.proxy, err = g.newProxy()
	if err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case ModeOutbound:
		mux := http.NewServeMux()
		mux.HandleFunc("GET /.well-known/agent-card.json", g.serveRemoteCard)
		mux.HandleFunc("/", g.serveOutbound)
		g.handler = mux
	default:
		mux := http.NewServeMux()
		if g.card != nil {
			mux.Handle("GET /.well-known/agent-card.json", g.card)
		}
		mux.HandleFunc("/", g.serveInbound)
		g.handler = mux
	}
	return g, nil
}

// Handler is the gate's HTTP handler (for tests and embedding; Serve uses it).
func (g *Gate) Handler() http.Handler { return g.handler }

// newProxy builds the reverse proxy to the upstream: plain HTTP (inbound, legacy) or
// mTLS with the gate's SVID (outbound). Streams pass through unbuffered.
func (g *Gate) newProxy() (*httputil.ReverseProxy, error) {
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
	var rt http.RoundTripper = tr
	if g.cfg.Mode == ModeOutbound {
		rt = &svidTransport{cfg: g.cfg}
	}
	rt = bodyTransport{rt}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&target)
			pr.Out.Host = target.Host
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
			g.cfg.Logger.Warn("gate: upstream failed", "decision_id", st.decisionID, "err", err)
			writeRefusal(w, st.call, Refusal{Status: http.StatusBadGateway, Reason: ReasonUpstream, Message: "the upstream did not answer", DecisionID: st.decisionID})
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
	decisionID string
	call       *Call
	body       []byte // the whole request body, already read and checked
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

// inboundHeaders are removed from every request before the pipeline: only the gate may
// set them towards the agent.
var inboundHeaders = []string{HeaderPeerID, HeaderDecisionID, "Authorization", "X-Warden-Action", "X-Warden-Resource", "X-Warden-Workflow", "Warden-Local-Secret"}

// serveInbound runs the pipeline of ARCHITECTURE.md "One call, end to end" and forwards
// the call, or refuses it in the caller's binding with an audit event either way.
func (g *Gate) serveInbound(w http.ResponseWriter, r *http.Request) {
	now := g.cfg.Now()
	start := time.Now()
	ev := Event{DecisionID: newDecisionID(), Time: now, Gate: g.cfg.Self.String(), Mode: g.cfg.Mode}
	// One span per decision, a child of the caller's W3C traceparent, so that one
	// workflow across agents is one trace; the forwarded call carries it on.
	ctx, span := telemetry.StartDecision(r.Context(), g.tracer(), r.Header, "", "", "", g.cfg.Self.String())
	r = r.WithContext(ctx)
	ev.TraceID, ev.SpanID = telemetry.IDs(ctx)
	finish := func() {
		ev.LatencyUS = time.Since(start).Microseconds()
		span.SetAttributes(telemetry.AttrWorkflowID.String(ev.Workflow), telemetry.AttrAction.String(ev.Action), telemetry.AttrCaller.String(ev.Peer))
		decision := "deny"
		if ev.Allow {
			decision = "allow"
		}
		telemetry.EndDecision(span, ev.DecisionID, decision, ev.Reason)
	}
	var call *Call
	refuse := func(status int, reason, msg string) {
		ev.Allow, ev.Reason, ev.Message = false, reason, msg
		finish()
		_ = g.cfg.Audit.Record(r.Context(), ev) // a refusal is refused whether or not the sink took it
		writeRefusal(w, call, Refusal{Status: status, Reason: reason, Message: msg, DecisionID: ev.DecisionID, ApprovalID: ev.ApprovalID})
	}
	for _, h := range inboundHeaders {
		r.Header.Del(h)
	}
	for _, h := range g.cfg.StripHeaders {
		r.Header.Del(h)
	}

	// 1 TLS: the listener verified the chain against the bundle (go-spiffe); here the
	// leaf must be an X509-SVID, not revoked, its agent not suspended.
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		refuse(http.StatusUnauthorized, ReasonNoPeerCert, "no client certificate")
		return
	}
	leaf := r.TLS.PeerCertificates[0]
	peerID, err := x509svid.IDFromCert(leaf)
	if err != nil {
		refuse(http.StatusUnauthorized, ReasonNoPeerCert, "client certificate is not an X509-SVID")
		return
	}
	ev.Peer = peerID.String()
	ev.CallerCertSHA256 = certSHA256(leaf)
	// Body, bounded in size and time (slowloris on the body).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.cfg.Limits.BodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.Limits.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			refuse(http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "body over "+strconv.FormatInt(g.cfg.Limits.MaxBody, 10)+" bytes")
		} else {
			refuse(http.StatusBadRequest, ReasonBodyTimeout, "body not received")
		}
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})

	c, err := Classify(r.Method, r.URL.Path, body)
	call = &c
	if err != nil {
		refuse(http.StatusBadRequest, ReasonUnknownMethod, "not an A2A 1.0 request")
		return
	}
	ev.Method = c.Method
	if c.Kind == KindConfig && !g.cfg.AllowPushConfig {
		refuse(http.StatusForbidden, ReasonMethodNotAllowed, c.Method+" is not passed by this gate")
		return
	}

	doc, age := g.cfg.Trust.Current()
	if doc == nil {
		refuse(http.StatusServiceUnavailable, ReasonNoTrustState, "the gate holds no verified trust state")
		return
	}
	ev.TrustVer = doc.Version
	if _, revoked := doc.IsRevoked(ev.Peer, hex.EncodeToString(leaf.SerialNumber.Bytes())); revoked {
		refuse(http.StatusUnauthorized, ReasonIdentityRevoked, "the caller's identity is revoked")
		return
	}
	if doc.Status(ev.Peer) == truststate.StatusSuspended {
		refuse(http.StatusForbidden, ReasonAgentSuspended, "the caller is suspended")
		return
	}

	// 2 intent: signature by the peer certificate's key, channel binding, audience,
	// window, body digest, then the replay cache (intent.Verifier does all, in order).
	tok, err := intent.TokenFromHeader(r.Header)
	if err != nil {
		refuse(http.StatusUnauthorized, intent.ReasonOf(err), "no valid "+intent.HeaderName+" header")
		return
	}
	r.Header.Del(intent.HeaderName)
	claims, err := g.verifier.Verify(r.Context(), tok, leaf, body, now)
	if err != nil {
		reason := intent.ReasonOf(err)
		status := http.StatusUnauthorized
		if reason == intent.ReasonReplayCacheFull {
			status = http.StatusServiceUnavailable
		}
		refuse(status, reason, "intent refused")
		return
	}
	ev.IntentID, ev.Action, ev.Resource, ev.Workflow = claims.ID, claims.Action, claims.Resource, claims.Workflow
	ev.Purpose, ev.Initiator = claims.Purpose, initiator(claims)
	if g.cfg.Catalog != nil && !g.cfg.Catalog.IsDeclared(ev.Peer, g.cfg.Self.String(), claims.Action) {
		ev.Undeclared = true // the catalog does not list this path: an anomaly signal
	}

	// 3 context: the caller's entry, staleness, attestation, approvals.
	agent, ok := peerAgent(g.cfg.Peers, doc, ev.Peer)
	if !ok {
		refuse(http.StatusForbidden, ReasonUnknownPeer, "the caller is neither in the control plane's directory nor in this gate's peers")
		return
	}
	agent.SPIFFEID, agent.TrustDomain = ev.Peer, peerID.TrustDomain().Name()
	if agent.Name == "" {
		agent.Name = lastSegment(peerID.Path())
	}
	read := g.isRead(claims.Action)
	if age > maxStaleness(doc, g.cfg.Zone, g.cfg.MaxStaleness) {
		ev.Stale = true
		if !read {
			refuse(http.StatusServiceUnavailable, ReasonTrustStale, "trust state older than the zone's max_staleness; only reads go on")
			return
		}
	}
	amount := metaInt(c.Metadata, "warden.amount")
	req := policy.Request{
		Agent:    agent,
		Action:   claims.Action,
		Workflow: claims.Workflow,
		Resource: g.resource(claims.Action, claims.Resource, amount, c.Metadata),
		Context: policy.CallContext{
			Purpose:         claims.Purpose,
			DataSensitivity: metaString(c.Metadata, "warden.data_sensitivity"),
			Amount:          amount,
			Currency:        metaString(c.Metadata, "warden.currency"),
			Attestation:     attestationOf(doc, ev.Peer, now),
		},
		Trust: g.trustViewOf(doc),
	}
	if req.Context.DataSensitivity == "" {
		req.Context.DataSensitivity = "internal"
	}
	areq := ApprovalRequest{
		ID: claims.Approval, Requester: ev.Peer, Audience: g.cfg.Self.String(), Action: claims.Action,
		Resource: claims.Resource, Workflow: claims.Workflow, Amount: amount, Currency: req.Context.Currency,
		DecisionID: ev.DecisionID,
	}
	// The binding hash is computed only for calls that file or carry an approval.
	bind := func() {
		areq.IntentHash = ApprovalHash(ev.Peer, g.cfg.Self.String(), claims.Action, claims.Resource, claims.Workflow, amount, req.Context.Currency)
	}
	approvalRefused := func(err error) bool {
		var ar *ApprovalRefusal
		switch {
		case errors.Is(err, ErrApprovalInvalid):
			refuse(http.StatusForbidden, ReasonApprovalInvalid, "apr does not name an approval of this request")
		case errors.As(err, &ar):
			refuse(http.StatusForbidden, ar.Reason, ar.Message)
		case err != nil:
			refuse(http.StatusServiceUnavailable, ReasonApprovalsDown, "approvals could not be checked")
		default:
			return false
		}
		return true
	}
	if claims.Approval != "" {
		ev.ApprovalID = claims.Approval
		bind()
		st, err := g.cfg.Approvals.Approval(r.Context(), areq)
		if approvalRefused(err) {
			return
		}
		req.Context.Approvers = st.Approvers
	}

	ev.AttestationTier, ev.AttestationAgeS = req.Context.Attestation.Tier, req.Context.Attestation.AgeSeconds

	// 4 Cedar decision.
	d := g.cfg.Policy.Decide(req, now)
	ev.PolicyIDs, ev.Revision, ev.Obligations = d.PolicyIDs, d.Revision, d.Obligations
	if !d.Allow {
		if slices.Contains(d.Obligations, "approval") && claims.Approval == "" {
			areq.PolicyIDs = d.PolicyIDs
			bind()
			st, err := g.cfg.Approvals.Approval(r.Context(), areq)
			if err != nil {
				refuse(http.StatusForbidden, ReasonApprovalsDown, "an approval is required and none can be filed: "+d.Reason)
				return
			}
			ev.ApprovalID = st.ID
			refuse(http.StatusForbidden, ReasonApprovalRequired, "approval "+st.ID+" filed; retry with apr set once approved")
			return
		}
		refuse(http.StatusForbidden, d.Code, d.Reason)
		return
	}

	// 4b single use: an allowed call that carries an approval uses it up before it is
	// forwarded, so the same approval cannot release a second call (a retry with a new
	// jti). Of concurrent retries exactly one is forwarded.
	if claims.Approval != "" {
		areq.Consume, areq.PolicyIDs = true, d.PolicyIDs
		if _, err := g.cfg.Approvals.Approval(r.Context(), areq); approvalRefused(err) {
			return
		}
	}

	// 5 audit, fail closed.
	ev.Allow, ev.Reason, ev.Message = true, d.Code, d.Reason
	finish()
	if err := g.cfg.Audit.Record(r.Context(), ev); err != nil {
		g.cfg.Logger.Error("gate: audit sink failed", "decision_id", ev.DecisionID, "err", err)
		ev.Allow = false
		writeRefusal(w, call, Refusal{Status: http.StatusServiceUnavailable, Reason: ReasonAuditFailed, Message: "the decision could not be audited", DecisionID: ev.DecisionID})
		return
	}

	// 6 forward.
	r.Header.Set(HeaderPeerID, ev.Peer)
	r.Header.Set(HeaderDecisionID, ev.DecisionID)
	telemetry.Inject(r.Context(), r.Header) // traceparent: the agent continues this trace
	if g.cfg.Mode == ModeLegacy {
		jwt, err := g.legacyToken(ev.Peer, claims.Action, claims.Resource, now)
		if err != nil {
			writeRefusal(w, call, Refusal{Status: http.StatusInternalServerError, Reason: ReasonSigning, DecisionID: ev.DecisionID})
			return
		}
		r.Header.Set("Authorization", "Bearer "+jwt)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, &reqState{decisionID: ev.DecisionID, call: call, body: body}))
	g.proxy.ServeHTTP(w, r)
}

// isRead reports whether action is in the schema's "read" group; unknown actions are not.
func (g *Gate) isRead(action string) bool {
	a, ok := g.action(action)
	return ok && slices.Contains(a.Groups, "read")
}

// resource builds the Cedar resource of a call. The type comes from the action (each
// action of the schema applies to one resource type); the id is res, with an optional
// "Type/" or `Type::"…"` prefix removed. Status comes from the call's metadata
// ("warden.resource_status", default "open"), bound to the intent by the body digest.
func (g *Gate) resource(action, res string, amount int64, meta map[string]any) policy.Resource {
	r := policy.Resource{ID: res, Amount: amount, Status: metaString(meta, "warden.resource_status")}
	if r.Status == "" {
		r.Status = "open"
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
