package gate

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/peercred"
	"github.com/warden-a2a/warden/internal/telemetry"
	"github.com/warden-a2a/warden/sdk"
)

// HeaderLocalSecret carries the per-process secret of a loopback caller (outbound mode).
const HeaderLocalSecret = "Warden-Local-Secret"

// Outbound act/res/wf come, first match wins, from: the headers X-Warden-Action,
// X-Warden-Resource, X-Warden-Workflow (removed before forwarding); the A2A message
// metadata keys "warden.action", "warden.resource", "warden.workflow"; Config.Defaults
// for the A2A method. A call with no action is refused (no_action).
const (
	headerAction   = "X-Warden-Action"
	headerResource = "X-Warden-Resource"
	headerWorkflow = "X-Warden-Workflow"
)

type credKey struct{}

// peerCred is the SO_PEERCRED of a unix-socket caller.
type peerCred struct {
	ok       bool
	uid, pid int
}

// ConnContext records the kernel's view of a unix-socket caller (SO_PEERCRED, socket(7))
// in the connection's context; Serve installs it.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitConn); ok {
		c = lc.Conn
	}
	cred, err := peercred.Of(c)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, credKey{}, peerCred{ok: true, uid: int(cred.UID), pid: int(cred.PID)})
}

// localCallerRefusal is "" for an authenticated local caller — a unix-socket caller whose
// uid is allowed, or a caller presenting the per-process secret (constant-time compare);
// never "anyone on localhost" — else why it is not (the message of
// local_caller_refused; never the secret).
func (g *Gate) localCallerRefusal(r *http.Request) string {
	if pc, ok := r.Context().Value(credKey{}).(peerCred); ok && pc.ok {
		if slices.Contains(g.cfg.AllowedUIDs, pc.uid) {
			return ""
		}
		return "local caller uid " + strconv.Itoa(pc.uid) + " is not in outbound.allowed_uids"
	}
	if len(g.cfg.LocalSecret) < 16 {
		return "loopback callers are not enabled (no outbound.secret_file): use the unix socket"
	}
	got := r.Header.Get(HeaderLocalSecret)
	if got == "" {
		return "no " + HeaderLocalSecret + " header: a loopback caller sends the content of outbound.secret_file in it"
	}
	if subtle.ConstantTimeCompare([]byte(got), g.cfg.LocalSecret) != 1 {
		return HeaderLocalSecret + " does not match outbound.secret_file"
	}
	return ""
}

// localCaller describes the local caller for the audit event (never the secret).
func localCaller(r *http.Request) string {
	if pc, ok := r.Context().Value(credKey{}).(peerCred); ok && pc.ok {
		return "uid=" + strconv.Itoa(pc.uid) + " pid=" + strconv.Itoa(pc.pid)
	}
	if r.Header.Get(HeaderLocalSecret) != "" {
		return "loopback with secret"
	}
	return "loopback"
}

type svidKey struct{}

// serveOutbound authenticates the local caller, signs the intent with the agent's own
// SVID key and forwards over mTLS presenting that same SVID (channel binding).
func (g *Gate) serveOutbound(w http.ResponseWriter, r *http.Request) {
	now := g.cfg.Now()
	ev := Event{DecisionID: newDecisionID(), Time: now, Gate: g.cfg.Self.String(), Mode: ModeOutbound, Peer: g.cfg.Audience}
	// The outbound span starts (or continues) the workflow's trace; its traceparent goes
	// out with the call so the remote gate's decision span is its child.
	ctx, span := telemetry.StartDecision(r.Context(), g.tracer(), r.Header, "", "", g.cfg.Self.String(), g.cfg.Audience)
	r = r.WithContext(ctx)
	ev.TraceID, ev.SpanID = telemetry.IDs(ctx)
	end := func() {
		span.SetAttributes(telemetry.AttrWorkflowID.String(ev.Workflow), telemetry.AttrAction.String(ev.Action))
		decision := "deny"
		if ev.Allow {
			decision = "allow"
		}
		telemetry.EndDecision(span, ev.DecisionID, decision, ev.Reason)
	}
	var call *Call
	refuse := func(status int, reason, msg string) {
		ev.Allow, ev.Reason, ev.Message = false, reason, msg
		end()
		_ = g.cfg.Audit.Record(r.Context(), ev)
		writeRefusal(w, call, Refusal{Status: status, Reason: reason, Message: msg, DecisionID: ev.DecisionID})
	}
	ev.LocalCaller = localCaller(r)
	if why := g.localCallerRefusal(r); why != "" {
		refuse(http.StatusUnauthorized, ReasonLocalAuth, why)
		return
	}
	r.Header.Del(HeaderLocalSecret)
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.cfg.Limits.BodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.Limits.MaxBody))
	if err != nil {
		refuse(http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "body too large or not received")
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	c, err := g.classify.Classify(r, body)
	call = &c
	if err != nil {
		rf := classifyRefusal(err)
		refuse(rf.Status, rf.Reason, rf.Message)
		return
	}
	ev.Method = c.Method
	in := sdk.Intent{Audience: g.cfg.Audience, TTL: g.cfg.OutboundTTL}
	in.Action = first(r.Header.Get(headerAction), metaString(c.Metadata, "warden.action"), g.cfg.Defaults[c.Method].Action)
	in.Resource = first(r.Header.Get(headerResource), metaString(c.Metadata, "warden.resource"), g.cfg.Defaults[c.Method].Resource)
	in.Workflow = first(r.Header.Get(headerWorkflow), metaString(c.Metadata, "warden.workflow"))
	in.Approval = metaString(c.Metadata, "warden.approval")
	scrubWarden(r.Header, "") // X-Warden-Action & co. are read; no Warden-* header goes on as sent
	r.Header.Del("Authorization")
	ev.Action, ev.Resource, ev.Workflow = in.Action, in.Resource, in.Workflow
	if in.Action == "" {
		refuse(http.StatusBadRequest, ReasonNoAction, "no action: set X-Warden-Action, message metadata warden.action, or a default for "+c.Method)
		return
	}
	svid, err := g.cfg.SVID.GetX509SVID()
	if err != nil {
		refuse(http.StatusServiceUnavailable, ReasonSigning, "no SVID")
		return
	}
	if na := svid.Certificates[0].NotAfter; !now.Before(na) {
		// The remote gate would refuse the handshake with a bare TLS alert: say why here.
		refuse(http.StatusServiceUnavailable, ReasonSVIDExpired, "this gate's SVID ("+svid.ID.String()+") expired at "+
			na.UTC().Format(time.RFC3339)+": the process that renews it (warden enroll --watch) has stopped or cannot reach the control plane")
		return
	}
	tok, err := sdk.SignIntent(svid.Certificates[0], svid.PrivateKey, in, body, now)
	if err != nil {
		refuse(http.StatusInternalServerError, ReasonSigning, "intent could not be signed")
		return
	}
	ev.Allow, ev.Reason, ev.Purpose, ev.Initiator = true, "signed", in.Purpose, g.cfg.Self.String()
	end()
	_ = g.cfg.Audit.Record(r.Context(), ev)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	ctx = context.WithValue(r.Context(), stateKey{}, &reqState{decisionID: ev.DecisionID, intent: tok, call: call, body: body})
	ctx = context.WithValue(ctx, svidKey{}, svid)
	g.proxy.ServeHTTP(w, r.WithContext(ctx))
}

func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// svidTransport sends each request over a connection that presents the very SVID its
// intent was signed with: one http.Transport per SVID (keyed by the leaf's serial). After
// a rotation new requests get a new transport; the old one finishes its in-flight
// requests and its idle connections are closed after a grace period. So rotation never
// makes an intent's cnf disagree with the certificate on its connection.
type svidTransport struct {
	cfg Config

	mu     sync.Mutex
	serial string
	cur    *http.Transport
}

func (t *svidTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	svid, ok := req.Context().Value(svidKey{}).(*x509svid.SVID)
	if !ok {
		return nil, errors.New("gate: outbound request without an SVID")
	}
	return t.transportFor(svid).RoundTrip(req)
}

func (t *svidTransport) transportFor(svid *x509svid.SVID) *http.Transport {
	serial := svid.Certificates[0].SerialNumber.String()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur != nil && t.serial == serial {
		return t.cur
	}
	authz := tlsconfig.AuthorizeMemberOf(t.cfg.Self.TrustDomain())
	if !t.cfg.UpstreamID.IsZero() {
		authz = tlsconfig.AuthorizeID(t.cfg.UpstreamID)
	}
	tc := tlsconfig.MTLSClientConfig(staticSVID{svid}, t.cfg.Bundle, authz)
	tc.MinVersion = tls.VersionTLS13
	next := &http.Transport{
		TLSClientConfig:     tc,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	if old := t.cur; old != nil {
		time.AfterFunc(2*time.Minute, old.CloseIdleConnections)
	}
	t.cur, t.serial = next, serial
	return next
}

type staticSVID struct{ s *x509svid.SVID }

func (s staticSVID) GetX509SVID() (*x509svid.SVID, error) { return s.s, nil }
