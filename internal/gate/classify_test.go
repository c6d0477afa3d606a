package gate_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"

	"github.com/warden-a2a/warden/internal/gate"
)

// classifyRoutes are the routes of the test agent (env_test.go startAgentOn): JSON-RPC
// on "/", HTTP+JSON under "/rest".
var classifyRoutes = gate.Routes{JSONRPCPath: "/", RESTPath: "/rest"}

func rpcCall(m string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"` + m + `","params":{"message":{"metadata":{"warden.action":"a"}}}}`
}

const (
	restSend  = `{"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"hi"}],"metadata":{"warden.action":"a"}}}`
	pushBody  = `{"jsonrpc":"2.0","id":1,"method":"CreateTaskPushNotificationConfig","params":{"taskId":"t1","url":"https://attacker.example/hook"}}`
	dupMethod = `{"jsonrpc":"2.0","id":1,"method":"SendMessage","Method":"CreateTaskPushNotificationConfig","params":{}}`
)

// classifyCases: each A2A 1.0 method on each binding, and each request that is not
// what it claims (the attacks of issue 13 item 1), with the reason it is refused.
var classifyCases = []struct {
	name, method, target, body string
	want                       string // A2A method, or the sentinel error's reason code
	binding                    gate.Binding
	stream                     bool
}{
	{"jsonrpc send", "POST", "/", rpcCall("SendMessage"), gate.MethodSendMessage, gate.BindingJSONRPC, false},
	{"jsonrpc stream", "POST", "/", rpcCall("SendStreamingMessage"), gate.MethodSendStreaming, gate.BindingJSONRPC, true},
	{"jsonrpc get", "POST", "/", rpcCall("GetTask"), gate.MethodGetTask, gate.BindingJSONRPC, false},
	{"jsonrpc list", "POST", "/", rpcCall("ListTasks"), gate.MethodListTasks, gate.BindingJSONRPC, false},
	{"jsonrpc cancel", "POST", "/", rpcCall("CancelTask"), gate.MethodCancelTask, gate.BindingJSONRPC, false},
	{"jsonrpc subscribe", "POST", "/", rpcCall("SubscribeToTask"), gate.MethodSubscribeToTask, gate.BindingJSONRPC, true},
	{"jsonrpc push set", "POST", "/", rpcCall("CreateTaskPushNotificationConfig"), gate.MethodCreatePushConfig, gate.BindingJSONRPC, false},
	{"jsonrpc push get", "POST", "/", rpcCall("GetTaskPushNotificationConfig"), gate.MethodGetPushConfig, gate.BindingJSONRPC, false},
	{"jsonrpc push list", "POST", "/", rpcCall("ListTaskPushNotificationConfigs"), gate.MethodListPushConfigs, gate.BindingJSONRPC, false},
	{"jsonrpc push delete", "POST", "/", rpcCall("DeleteTaskPushNotificationConfig"), gate.MethodDeletePushConfig, gate.BindingJSONRPC, false},
	{"jsonrpc extended card", "POST", "/", rpcCall("GetExtendedAgentCard"), gate.MethodGetExtendedCard, gate.BindingJSONRPC, false},
	{"jsonrpc string id and query", "POST", "/?x=1", `{"jsonrpc":"2.0","id":"a","method":"GetTask","params":{"id":"t1"}}`, gate.MethodGetTask, gate.BindingJSONRPC, false},
	{"rest send", "POST", "/rest/message:send", restSend, gate.MethodSendMessage, gate.BindingREST, false},
	{"rest stream", "POST", "/rest/message:stream", restSend, gate.MethodSendStreaming, gate.BindingREST, true},
	{"rest get", "GET", "/rest/tasks/t1", "", gate.MethodGetTask, gate.BindingREST, false},
	{"rest get with a2a-go's null body", "GET", "/rest/tasks/t1", "null", gate.MethodGetTask, gate.BindingREST, false},
	{"rest get escaped space", "GET", "/rest/tasks/t%201", "", gate.MethodGetTask, gate.BindingREST, false},
	{"rest list", "GET", "/rest/tasks?pageSize=2", "", gate.MethodListTasks, gate.BindingREST, false},
	{"rest cancel", "POST", "/rest/tasks/t1:cancel", "null", gate.MethodCancelTask, gate.BindingREST, false},
	{"rest subscribe", "POST", "/rest/tasks/t1:subscribe", "", gate.MethodSubscribeToTask, gate.BindingREST, true},
	{"rest push create", "POST", "/rest/tasks/t1/pushNotificationConfigs", `{"url":"https://x.example"}`, gate.MethodCreatePushConfig, gate.BindingREST, false},
	{"rest push get", "GET", "/rest/tasks/t1/pushNotificationConfigs/c1", "", gate.MethodGetPushConfig, gate.BindingREST, false},
	{"rest push list", "GET", "/rest/tasks/t1/pushNotificationConfigs", "", gate.MethodListPushConfigs, gate.BindingREST, false},
	{"rest push delete", "DELETE", "/rest/tasks/t1/pushNotificationConfigs/c1", "", gate.MethodDeletePushConfig, gate.BindingREST, false},
	{"rest extended card", "GET", "/rest/extendedAgentCard", "", gate.MethodGetExtendedCard, gate.BindingREST, false},
	{"rest get subscribe suffix is GetTask as a2a-go routes it", "GET", "/rest/tasks/t1:subscribe", "", gate.MethodGetTask, gate.BindingREST, false},

	// Attacks and other refusals.
	{"push-config body on the SendMessage route", "POST", "/rest/message:send", pushBody, gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"push-config body on the SendMessage route at the root", "POST", "/message:send", pushBody, gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"JSON-RPC body with a case-variant method on a REST route", "POST", "/rest/message:send", `{"METHOD":"CancelTask","message":{}}`, gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"JSON-RPC body on the cancel route", "POST", "/rest/tasks/t1:cancel", pushBody, gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"escaped slash", "GET", "/rest/tasks/t1%2FpushNotificationConfigs", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"escaped slash lower case", "GET", "/rest/tasks/a%2fb", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"escaped dot-dot", "GET", "/rest/tasks/%2e%2e", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"escaped dot-dot upper case", "POST", "/rest/%2E%2E/message:send", restSend, gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"escaped colon", "POST", "/rest/message%3Asend", restSend, gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"escaped backslash", "GET", "/rest/tasks/a%5Cb", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"escaped percent", "GET", "/rest/tasks/a%252Fb", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"escaped NUL", "GET", "/rest/tasks/a%00", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"double slash", "POST", "/rest//message:send", restSend, gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"leading double slash", "GET", "//rest/tasks", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"dot segment", "GET", "/rest/./tasks", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"dot-dot segment", "GET", "/x/../rest/tasks", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"route under an unrelated prefix", "POST", "/acme/message:send", restSend, gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"GET /anything/tasks", "GET", "/anything/tasks", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"tasks suffix under the REST prefix", "GET", "/rest/x/tasks", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"trailing slash", "GET", "/rest/tasks/", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"rest delete task", "DELETE", "/rest/tasks/t1", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"rest post task without action", "POST", "/rest/tasks/t1", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"rest post bare action", "POST", "/rest/tasks/:cancel", "", gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"JSON-RPC on another path", "POST", "/a2a", rpcCall("SendMessage"), gate.ReasonUnknownMethod, gate.BindingREST, false},
	{"GET on the JSON-RPC path", "GET", "/", "", gate.ReasonUnknownMethod, gate.BindingJSONRPC, false},
	{"jsonrpc old method name", "POST", "/", rpcCall("message/send"), gate.ReasonUnknownMethod, gate.BindingJSONRPC, false},
	{"jsonrpc batch", "POST", "/", `[` + rpcCall("SendMessage") + `]`, gate.ReasonInvalidRequest, gate.BindingJSONRPC, false},
	{"jsonrpc 1.0", "POST", "/", `{"method":"SendMessage","id":1}`, gate.ReasonInvalidRequest, gate.BindingJSONRPC, false},
	{"jsonrpc duplicate method", "POST", "/", `{"jsonrpc":"2.0","id":1,"method":"SendMessage","method":"CreateTaskPushNotificationConfig"}`, gate.ReasonInvalidRequest, gate.BindingJSONRPC, false},
	{"jsonrpc method differing in case", "POST", "/", dupMethod, gate.ReasonInvalidRequest, gate.BindingJSONRPC, false},
	{"jsonrpc duplicate nested key", "POST", "/", `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"metadata":{"warden.amount":1,"warden.amount":90000}}}}`, gate.ReasonInvalidRequest, gate.BindingJSONRPC, false},
	{"jsonrpc invalid UTF-8", "POST", "/", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"SendMessage\",\"params\":{\"x\":\"\xff\"}}", gate.ReasonInvalidRequest, gate.BindingJSONRPC, false},
	{"jsonrpc lone surrogate", "POST", "/", `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"x":"\ud800"}}`, gate.ReasonInvalidRequest, gate.BindingJSONRPC, false},
	{"jsonrpc trailing data", "POST", "/", rpcCall("GetTask") + rpcCall("CancelTask"), gate.ReasonInvalidRequest, gate.BindingJSONRPC, false},
	{"jsonrpc object id", "POST", "/", `{"jsonrpc":"2.0","id":{},"method":"GetTask"}`, gate.ReasonInvalidRequest, gate.BindingJSONRPC, false},
	{"jsonrpc not JSON", "POST", "/", `method=SendMessage`, gate.ReasonInvalidRequest, gate.BindingJSONRPC, false},
	{"jsonrpc deep nesting", "POST", "/", `{"jsonrpc":"2.0","method":"SendMessage","params":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, gate.ReasonInvalidRequest, gate.BindingJSONRPC, false},
	{"rest send without body", "POST", "/rest/message:send", "", gate.ReasonInvalidRequest, gate.BindingREST, false},
	{"rest send with unknown member", "POST", "/rest/message:send", `{"message":{},"params":{}}`, gate.ReasonInvalidRequest, gate.BindingREST, false},
	{"rest send with duplicate key", "POST", "/rest/message:send", `{"message":{"metadata":{"a":1,"A":2}}}`, gate.ReasonInvalidRequest, gate.BindingREST, false},
}

func newClassifier(t testing.TB, r gate.Routes) *gate.Classifier {
	c, err := gate.NewClassifier(r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func reasonOf(err error) string {
	switch {
	case errors.Is(err, gate.ErrInvalidRequest):
		return gate.ReasonInvalidRequest
	case errors.Is(err, gate.ErrUnknownMethod):
		return gate.ReasonUnknownMethod
	}
	return ""
}

// TestClassify: the table above, with the binding the refusal goes out in.
func TestClassify(t *testing.T) {
	cl := newClassifier(t, classifyRoutes)
	for _, tc := range classifyCases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			c, err := cl.Classify(r, []byte(tc.body))
			got := c.Method
			if err != nil {
				got = reasonOf(err)
			}
			if got != tc.want || c.Binding != tc.binding || (err == nil && c.Streaming != tc.stream) {
				t.Errorf("got %q binding %v streaming %v (%v), want %q binding %v", got, c.Binding, c.Streaming, err, tc.want, tc.binding)
			}
		})
	}
}

// TestClassifyRoutesConfig: the JSON-RPC path and a tenant prefix as a2a-go's
// NewTenantRESTHandler serves them; paths that cannot be routes are refused.
func TestClassifyRoutesConfig(t *testing.T) {
	cl := newClassifier(t, gate.Routes{JSONRPCPath: "/a2a", RESTPath: "/{tenant}"})
	for _, tc := range []struct{ method, target, body, want string }{
		{"POST", "/a2a", rpcCall("GetTask"), gate.MethodGetTask},
		{"POST", "/", rpcCall("GetTask"), gate.ReasonUnknownMethod},
		{"POST", "/a2a/", rpcCall("GetTask"), gate.ReasonUnknownMethod},
		{"POST", "/acme/message:send", restSend, gate.MethodSendMessage},
		{"GET", "/acme/tasks/t1", "", gate.MethodGetTask},
		{"POST", "/message:send", restSend, gate.ReasonUnknownMethod},
		{"POST", "/a/b/message:send", restSend, gate.ReasonUnknownMethod},
		{"POST", "/a%2Fb/message:send", restSend, gate.ReasonUnknownMethod},
	} {
		c, err := cl.Classify(httptest.NewRequest(tc.method, tc.target, nil), []byte(tc.body))
		got := c.Method
		if err != nil {
			got = reasonOf(err)
		}
		if got != tc.want {
			t.Errorf("%s %s: %q (%v), want %q", tc.method, tc.target, got, err, tc.want)
		}
	}
	for _, bad := range []gate.Routes{
		{JSONRPCPath: "a2a"}, {JSONRPCPath: "/a/../b"}, {JSONRPCPath: "/a%2Fb"}, {JSONRPCPath: "/a//b"},
		{RESTPath: "/{tenant...}"}, {RESTPath: "rest"}, {JSONRPCPath: "/tasks/{id}"},
		{JSONRPCPath: "/message:send"}, // the JSON-RPC path is a REST route
	} {
		if _, err := gate.NewClassifier(bad); err == nil {
			t.Errorf("routes %+v accepted", bad)
		}
	}
}

// dispatchRecorder is an a2asrv.RequestHandler that records which method a2a-go's
// transport handlers dispatched, and fails every call.
type dispatchRecorder struct {
	mu  sync.Mutex
	got []string
}

var errRecorded = errors.New("recorded")

func (d *dispatchRecorder) rec(m string) {
	d.mu.Lock()
	d.got = append(d.got, m)
	d.mu.Unlock()
}

func (d *dispatchRecorder) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.got
	d.got = nil
	return g
}

func (d *dispatchRecorder) GetTask(context.Context, *a2a.GetTaskRequest) (*a2a.Task, error) {
	d.rec(gate.MethodGetTask)
	return nil, errRecorded
}
func (d *dispatchRecorder) ListTasks(context.Context, *a2a.ListTasksRequest) (*a2a.ListTasksResponse, error) {
	d.rec(gate.MethodListTasks)
	return nil, errRecorded
}
func (d *dispatchRecorder) CancelTask(context.Context, *a2a.CancelTaskRequest) (*a2a.Task, error) {
	d.rec(gate.MethodCancelTask)
	return nil, errRecorded
}
func (d *dispatchRecorder) SendMessage(context.Context, *a2a.SendMessageRequest) (a2a.SendMessageResult, error) {
	d.rec(gate.MethodSendMessage)
	return nil, errRecorded
}
func (d *dispatchRecorder) SubscribeToTask(context.Context, *a2a.SubscribeToTaskRequest) iter.Seq2[a2a.Event, error] {
	d.rec(gate.MethodSubscribeToTask)
	return func(yield func(a2a.Event, error) bool) { yield(nil, errRecorded) }
}
func (d *dispatchRecorder) SendStreamingMessage(context.Context, *a2a.SendMessageRequest) iter.Seq2[a2a.Event, error] {
	d.rec(gate.MethodSendStreaming)
	return func(yield func(a2a.Event, error) bool) { yield(nil, errRecorded) }
}
func (d *dispatchRecorder) GetTaskPushConfig(context.Context, *a2a.GetTaskPushConfigRequest) (*a2a.PushConfig, error) {
	d.rec(gate.MethodGetPushConfig)
	return nil, errRecorded
}
func (d *dispatchRecorder) ListTaskPushConfigs(context.Context, *a2a.ListTaskPushConfigRequest) (*a2a.ListTaskPushConfigResponse, error) {
	d.rec(gate.MethodListPushConfigs)
	return nil, errRecorded
}
func (d *dispatchRecorder) CreateTaskPushConfig(context.Context, *a2a.PushConfig) (*a2a.PushConfig, error) {
	d.rec(gate.MethodCreatePushConfig)
	return nil, errRecorded
}
func (d *dispatchRecorder) DeleteTaskPushConfig(context.Context, *a2a.DeleteTaskPushConfigRequest) error {
	d.rec(gate.MethodDeletePushConfig)
	return errRecorded
}
func (d *dispatchRecorder) GetExtendedAgentCard(context.Context, *a2a.GetExtendedAgentCardRequest) (*a2a.AgentCard, error) {
	d.rec(gate.MethodGetExtendedCard)
	return nil, errRecorded
}

var _ a2asrv.RequestHandler = (*dispatchRecorder)(nil)

// recordingAgent mounts a2a-go's own handlers as the test agent does: HTTP+JSON under
// /rest, JSON-RPC on every other path (the widest an agent can be).
func recordingAgent() (*dispatchRecorder, http.Handler) {
	d := &dispatchRecorder{}
	mux := http.NewServeMux()
	mux.Handle("/rest/", http.StripPrefix("/rest", a2asrv.NewRESTHandler(d)))
	mux.Handle("/", a2asrv.NewJSONRPCHandler(d))
	return d, mux
}

// dispatch sends a raw request line and body to the a2a-go agent and returns the
// methods it dispatched. The request is parsed by net/http from the wire, as the agent
// would receive it from the gate.
func dispatch(t testing.TB, d *dispatchRecorder, h http.Handler, method, target, body string) []string {
	raw := method + " " + target + " HTTP/1.1\r\nHost: agent\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		return nil // not an HTTP request net/http would serve either
	}
	h.ServeHTTP(httptest.NewRecorder(), r)
	return d.take()
}

// TestClassifyAgreesWithA2AGo: every request the classifier accepts as method M is
// dispatched by a2a-go v2.3.1's own handlers as M, and none of the attacks reaches a
// different method than the gate would have judged.
func TestClassifyAgreesWithA2AGo(t *testing.T) {
	cl := newClassifier(t, classifyRoutes)
	d, agent := recordingAgent()
	for _, tc := range classifyCases {
		t.Run(tc.name, func(t *testing.T) {
			checkAgreement(t, cl, d, agent, tc.method, tc.target, []byte(tc.body))
			// An accepted call does reach a2a-go's handler of that method (so the
			// agreement above is not vacuous).
			if tc.want == gate.ReasonUnknownMethod || tc.want == gate.ReasonInvalidRequest {
				return
			}
			if got := dispatch(t, d, agent, tc.method, tc.target, tc.body); len(got) != 1 || got[0] != tc.want {
				t.Errorf("a2a-go dispatched %v, want %s", got, tc.want)
			}
		})
	}
}

func checkAgreement(t testing.TB, cl *gate.Classifier, d *dispatchRecorder, agent http.Handler, method, target string, body []byte) {
	raw := method + " " + target + " HTTP/1.1\r\nHost: agent\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n"
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		return
	}
	c, err := cl.Classify(r, body)
	if err != nil {
		return // refused: the agent never sees it
	}
	got := dispatch(t, d, agent, method, target, string(body))
	if len(got) > 1 || (len(got) == 1 && got[0] != c.Method) {
		t.Fatalf("%s %s %q: gate judged %s, a2a-go dispatched %v", method, target, body, c.Method, got)
	}
}

// FuzzClassify: the classifier never accepts a call without a method, and never one
// that a2a-go's handlers dispatch as another method. Seeds: every case of the table,
// the attacks among them.
func FuzzClassify(f *testing.F) {
	for _, tc := range classifyCases {
		f.Add(tc.method, tc.target, []byte(tc.body))
	}
	cl := newClassifier(f, classifyRoutes)
	d, agent := recordingAgent()
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		if strings.ContainsAny(method+target, " \r\n") || !strings.HasPrefix(target, "/") {
			return
		}
		raw := method + " " + target + " HTTP/1.1\r\nHost: agent\r\n\r\n"
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return
		}
		c, err := cl.Classify(r, body)
		if err == nil && (c.Method == "" || c.Kind == "") {
			t.Fatalf("classified without a method: %q %q %q", method, target, body)
		}
		if err == nil && c.Binding == gate.BindingJSONRPC && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
			t.Fatalf("a non-object classified as JSON-RPC: %q", body)
		}
		checkAgreement(t, cl, d, agent, method, target, body)
	})
}
