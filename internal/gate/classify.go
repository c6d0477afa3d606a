package gate

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/warden-a2a/warden/internal/jcs"
)

// Routes says where the protected agent serves A2A: the gate classifies a request by
// what the agent's handler will dispatch, so it must know the agent's paths
// (gate.yaml a2a.jsonrpc_path and a2a.rest_path, docs/gate.md "A2A classification").
type Routes struct {
	// JSONRPCPath is the one path JSON-RPC calls are POSTed to (the URL of the agent
	// card's JSONRPC interface); default "/".
	JSONRPCPath string
	// RESTPath is the prefix of the HTTP+JSON routes (the URL of the card's HTTP+JSON
	// interface): "" or "/" for the root, else "/rest" or, for an agent served by
	// a2a-go's NewTenantRESTHandler, a prefix with wildcard segments such as
	// "/{tenant}" or "/locations/{location}/projects/{project}".
	RESTPath string
}

// ErrUnknownMethod: the request is not an A2A 1.0 call the agent would dispatch, or its
// body names another method than its route (reason unknown_method).
var ErrUnknownMethod = errors.New("gate: not a known A2A method")

// ErrInvalidRequest: the request is an A2A call whose body the gate refuses to read
// (reason invalid_request): not one strict JSON value (duplicate keys, equal ignoring
// case too; invalid UTF-8; trailing data), a JSON-RPC batch, not JSON-RPC 2.0.
var ErrInvalidRequest = errors.New("gate: invalid A2A request")

// classifyError is ErrUnknownMethod or ErrInvalidRequest with what was wrong.
type classifyError struct {
	sentinel error
	detail   string
}

func (e *classifyError) Error() string { return e.sentinel.Error() + ": " + e.detail }
func (e *classifyError) Unwrap() error { return e.sentinel }

func unknownMethod(format string, args ...any) error {
	return &classifyError{ErrUnknownMethod, fmt.Sprintf(format, args...)}
}

func invalidRequest(format string, args ...any) error {
	return &classifyError{ErrInvalidRequest, fmt.Sprintf(format, args...)}
}

// Classifier maps a request onto the A2A method the agent will run, exactly as a2a-go
// v2.3.1's handlers dispatch it: JSON-RPC (a2asrv.NewJSONRPCHandler) only as POST on
// the JSON-RPC path, method from the body; HTTP+JSON (a2asrv.NewRESTHandler) on an
// http.ServeMux holding a2a-go's very route patterns, so that the gate and the agent
// cannot disagree on which route a path is. Before the mux the escaped path must be
// canonical (canonicalPath): a percent-escape of '/', '.', '\', '%', a control byte or
// of a byte that needs none is refused, so a path means one thing to every router that
// unescapes it. A path the mux would redirect (//, dot segments) is no route.
type Classifier struct {
	mux *http.ServeMux
}

// route is what a mux pattern resolves to.
type route struct {
	method  string // A2A method; "" for POST {rest}/tasks/{idAndAction}
	binding Binding
}

// ServeHTTP is never called: the classifier only asks the mux which route matches.
func (route) ServeHTTP(http.ResponseWriter, *http.Request) {}

// NewClassifier builds the classifier of an agent served at r.
func NewClassifier(r Routes) (c *Classifier, err error) {
	rpc := r.JSONRPCPath
	if rpc == "" {
		rpc = "/"
	}
	if err := checkRoutePath(rpc, false); err != nil {
		return nil, fmt.Errorf("gate: a2a.jsonrpc_path %q: %w", rpc, err)
	}
	rest := strings.TrimSuffix(r.RESTPath, "/")
	if rest != "" {
		if err := checkRoutePath(rest, true); err != nil {
			return nil, fmt.Errorf("gate: a2a.rest_path %q: %w", r.RESTPath, err)
		}
	}
	mux := http.NewServeMux()
	defer func() { // ServeMux panics on a pattern it refuses or two that conflict
		if p := recover(); p != nil {
			c, err = nil, fmt.Errorf("gate: a2a routes: %v", p)
		}
	}()
	rpcPattern := rpc
	if strings.HasSuffix(rpc, "/") {
		rpcPattern += "{$}" // exactly this path, not the subtree
	}
	mux.Handle("POST "+rpcPattern, route{binding: BindingJSONRPC})
	// a2a-go v2.3.1 a2asrv/rest.go NewRESTHandler, the same patterns in the same form.
	for _, p := range []struct{ pattern, method string }{
		{"POST /message:send", MethodSendMessage},
		{"POST /message:stream", MethodSendStreaming},
		{"GET /tasks/{id}", MethodGetTask},
		{"GET /tasks", MethodListTasks},
		{"POST /tasks/{idAndAction}", ""}, // :cancel or :subscribe, else a2a-go refuses
		{"POST /tasks/{id}/pushNotificationConfigs", MethodCreatePushConfig},
		{"GET /tasks/{id}/pushNotificationConfigs/{configId}", MethodGetPushConfig},
		{"GET /tasks/{id}/pushNotificationConfigs", MethodListPushConfigs},
		{"DELETE /tasks/{id}/pushNotificationConfigs/{configId}", MethodDeletePushConfig},
		{"GET /extendedAgentCard", MethodGetExtendedCard},
	} {
		verb, path, _ := strings.Cut(p.pattern, " ")
		mux.Handle(verb+" "+rest+path, route{method: p.method, binding: BindingREST})
	}
	return &Classifier{mux: mux}, nil
}

// checkRoutePath accepts an absolute path of plain segments (RFC 3986 pchar without
// percent-escapes), and with wildcards set also whole-segment {name} wildcards.
func checkRoutePath(p string, wildcards bool) error {
	if !strings.HasPrefix(p, "/") {
		return errors.New("must start with /")
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		switch {
		case s == "" && i == len(segs)-1:
		case s == "" || s == "." || s == "..":
			return errors.New("empty or dot segment")
		case wildcards && len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}' && !strings.HasSuffix(s, "...}"):
		default:
			for j := 0; j < len(s); j++ {
				if !pathByte(s[j]) {
					return fmt.Errorf("byte %q not allowed in a route", s[j])
				}
			}
		}
	}
	return nil
}

// pathByte: RFC 3986 unreserved, sub-delims, ':' and '@' (a pchar without escapes).
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}

// canonicalPath reports whether an escaped request path means one thing to every
// router: it starts with '/', holds only pchars and '/', and each percent-escape (either
// hex case) stands for a byte that must be escaped in a path segment (url.PathEscape
// would write it) other than '/', '%', '\' and control bytes. So "%2F", "%2e%2e",
// "%5C", "%25", "%00" and "%3A" are refused; "%20" and UTF-8 escapes are not.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '/' || pathByte(c) {
			continue
		}
		if c != '%' || i+2 >= len(p) {
			return false
		}
		h, l := unhexByte(p[i+1]), unhexByte(p[i+2])
		if h < 0 || l < 0 {
			return false
		}
		b := byte(h<<4 | l)
		if b < 0x20 || b == 0x7f || b == '/' || b == '%' || b == '\\' || (b < 0x80 && pathByte(b)) {
			return false
		}
		i += 2
	}
	return true
}

func unhexByte(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// Classify reads the A2A call of r whose whole body is body. The error is
// ErrUnknownMethod or ErrInvalidRequest, wrapped with what was wrong; the Call holds the
// binding (and JSON-RPC id) as far as they could be read, so that the refusal goes out
// in the caller's binding: every request on the JSON-RPC path is answered in JSON-RPC.
func (cl *Classifier) Classify(r *http.Request, body []byte) (Call, error) {
	if !canonicalPath(r.URL.EscapedPath()) {
		return Call{Binding: BindingREST}, unknownMethod("path %q is not in canonical form", r.URL.EscapedPath())
	}
	h, _ := cl.mux.Handler(r)
	rt, ok := h.(route)
	if !ok { // no pattern, another HTTP method, or a redirect (unclean path)
		if cl.isJSONRPCPath(r) {
			return Call{Binding: BindingJSONRPC}, unknownMethod("%s on the JSON-RPC path", r.Method)
		}
		return Call{Binding: BindingREST}, unknownMethod("%s %s is no A2A route", r.Method, r.URL.EscapedPath())
	}
	if rt.binding == BindingJSONRPC {
		return classifyJSONRPC(body)
	}
	return classifyREST(r, rt, body)
}

// isJSONRPCPath: a request for the JSON-RPC path whatever its method (answered in
// JSON-RPC when refused).
func (cl *Classifier) isJSONRPCPath(r *http.Request) bool {
	q := r.Clone(r.Context())
	q.Method = http.MethodPost
	h, _ := cl.mux.Handler(q)
	rt, ok := h.(route)
	return ok && rt.binding == BindingJSONRPC
}

// strictJSON is the one parse of a body: jcs's strict reader, with keys equal ignoring
// case refused too (encoding/json matches struct fields case-insensitively).
func strictJSON(body []byte) (jcs.Value, error) {
	v, err := jcs.ParseWith(body, jcs.Options{FoldDuplicates: true})
	if err != nil {
		return jcs.Value{}, invalidRequest("%v", strings.TrimPrefix(err.Error(), "jcs: "))
	}
	return v, nil
}

// classifyJSONRPC reads a JSON-RPC 2.0 request object (a2a-go's jsonrpc.ServerRequest:
// jsonrpc, method, params, id, matched as encoding/json matches struct fields).
func classifyJSONRPC(body []byte) (Call, error) {
	c := Call{Binding: BindingJSONRPC}
	v, err := strictJSON(body)
	if err != nil {
		return c, err
	}
	switch v.Kind() {
	case jcs.Object:
	case jcs.Array:
		return c, invalidRequest("JSON-RPC batches are not accepted")
	default:
		return c, invalidRequest("not a JSON-RPC request object")
	}
	switch id := v.GetFold("id"); id.Kind() { // a2a-go: string, number or null
	case jcs.String:
		s, _ := id.Str()
		c.ID, _ = json.Marshal(s)
	case jcs.Number:
		_, lit, _ := id.Number()
		c.ID = json.RawMessage(lit)
	case jcs.Invalid, jcs.Null:
	default:
		return c, invalidRequest("id must be a string, a number or null")
	}
	if ver, _ := v.GetFold("jsonrpc").Str(); ver != "2.0" {
		return c, invalidRequest(`jsonrpc must be "2.0"`)
	}
	m, ok := v.GetFold("method").Str()
	if !ok || m == "" {
		return c, invalidRequest("no method")
	}
	kind, ok := methodKinds[m]
	if !ok {
		return c, unknownMethod("%q is not an A2A 1.0 method", m)
	}
	c.Method, c.Kind = m, kind
	c.Streaming = m == MethodSendStreaming || m == MethodSubscribeToTask
	params := v.GetFold("params")
	if msg := params.GetFold("message"); msg.Kind() == jcs.Object {
		c.Metadata = msg.GetFold("metadata")
	} else {
		c.Metadata = params.GetFold("metadata")
	}
	return c, nil
}

// sendMessageFields are the members of a2a.SendMessageRequest (a2a-go v2.3.1 a2a/core.go),
// the body of POST /message:send and /message:stream.
var sendMessageFields = []string{"tenant", "configuration", "message", "metadata"}

// classifyREST checks the body of an HTTP+JSON route: no JSON-RPC envelope (a body
// whose method disagrees with the route), and for SendMessage a SendMessageRequest.
func classifyREST(r *http.Request, rt route, body []byte) (Call, error) {
	c := Call{Binding: BindingREST, Method: rt.method}
	if rt.method == "" { // POST {rest}/tasks/{idAndAction}, as a2a-go's handlePOSTTasks
		seg := r.URL.EscapedPath()
		seg = seg[strings.LastIndexByte(seg, '/')+1:]
		switch {
		case strings.HasSuffix(seg, ":cancel") && len(seg) > len(":cancel"):
			c.Method = MethodCancelTask
		case strings.HasSuffix(seg, ":subscribe") && len(seg) > len(":subscribe"):
			c.Method = MethodSubscribeToTask
		default:
			return c, unknownMethod("POST %s is neither :cancel nor :subscribe", r.URL.EscapedPath())
		}
	}
	c.Kind = methodKinds[c.Method]
	c.Streaming = c.Method == MethodSendStreaming || c.Method == MethodSubscribeToTask
	send := c.Method == MethodSendMessage || c.Method == MethodSendStreaming
	if len(trimSpace(body)) == 0 {
		if send {
			return c, invalidRequest("%s needs a SendMessageRequest body", c.Method)
		}
		return c, nil
	}
	v, err := strictJSON(body)
	if err != nil {
		return c, err
	}
	if v.Kind() == jcs.Object {
		for _, k := range []string{"jsonrpc", "method"} {
			if v.GetFold(k).Kind() != jcs.Invalid {
				return c, unknownMethod("a JSON-RPC body on the HTTP+JSON route of %s", c.Method)
			}
		}
	}
	if !send {
		return c, nil
	}
	if v.Kind() != jcs.Object {
		return c, invalidRequest("the body of %s is not an object", c.Method)
	}
	for i := range v.Len() {
		k, _ := v.Member(i)
		known := false
		for _, f := range sendMessageFields {
			known = known || strings.EqualFold(k, f)
		}
		if !known {
			return c, invalidRequest("%q is not a member of a SendMessageRequest", k)
		}
	}
	msg := v.GetFold("message")
	if msg.Kind() != jcs.Object {
		return c, invalidRequest("a SendMessageRequest needs a message")
	}
	c.Metadata = msg.GetFold("metadata")
	return c, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
