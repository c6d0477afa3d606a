package gate_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/internal/truststate"
	"github.com/warden-a2a/warden/sdk"
)

// TestA2AThroughGates: an unmodified a2a-go client, through an outbound gate, and an
// unmodified a2a-go server, behind an inbound gate, complete SendMessage, a streaming
// call and GetTask, on both bindings, and with the agent on a unix socket.
func TestA2AThroughGates(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name    string
		binding a2a.TransportProtocol
		path    string
		network string // the agent's listener
	}{
		{"jsonrpc", a2a.TransportProtocolJSONRPC, "/", "tcp"},
		{"rest", a2a.TransportProtocolHTTPJSON, "/rest", "tcp"},
		{"jsonrpc-agent-on-unix-socket", a2a.TransportProtocolJSONRPC, "/", "unix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ag := startAgentOn(t, tc.network)
			in, _ := e.inbound(ag.url, nil)
			inAddr := startGate(t, in, "tcp")
			out := e.outbound("https://"+inAddr, &rotSVID{s: e.svid("/agent/procurement")})
			sock := startGate(t, out, "unix")
			client := a2aClient(t, sock, tc.binding, tc.path)
			ctx := context.Background()
			meta := map[string]any{"warden.action": "purchase_order.create", "warden.resource": "Order/PO-1", "warden.amount": 1200, "warden.currency": "EUR"}

			msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("create PO-1"))
			msg.Metadata = meta
			res, err := client.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
			if err != nil {
				t.Fatalf("SendMessage: %v (last event %+v)", err, e.events.last())
			}
			if m, ok := res.(*a2a.Message); !ok || len(m.Parts) == 0 {
				t.Fatalf("SendMessage result %T %+v", res, res)
			}
			h := ag.lastHeader()
			if h.Get(gate.HeaderPeerID) != agentID("procurement").String() || !strings.HasPrefix(h.Get(gate.HeaderDecisionID), "dec_") {
				t.Errorf("agent saw peer %q decision %q", h.Get(gate.HeaderPeerID), h.Get(gate.HeaderDecisionID))
			}

			smsg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("stream PO-1"))
			smsg.Metadata = map[string]any{"warden.action": "purchase_order.create", "warden.resource": "Order/PO-1", "warden.amount": 1200, "warden.currency": "EUR", "want_task": true}
			var taskID a2a.TaskID
			var states []a2a.TaskState
			for ev, err := range client.SendStreamingMessage(ctx, &a2a.SendMessageRequest{Message: smsg}) {
				if err != nil {
					t.Fatalf("stream: %v", err)
				}
				switch v := ev.(type) {
				case *a2a.Task:
					taskID = v.ID
				case *a2a.TaskStatusUpdateEvent:
					taskID = v.TaskID
					states = append(states, v.Status.State)
				}
			}
			if taskID == "" || len(states) == 0 || states[len(states)-1] != a2a.TaskStateCompleted {
				t.Fatalf("stream: task %q states %v", taskID, states)
			}
			task, err := client.GetTask(ctx, &a2a.GetTaskRequest{ID: taskID})
			if err != nil {
				t.Fatalf("GetTask: %v", err)
			}
			if task.Status.State != a2a.TaskStateCompleted {
				t.Errorf("GetTask state %v", task.Status.State)
			}
		})
	}
}

// TestRefusalReachesA2AClient: a refusal is readable by an unmodified a2a-go client on
// both bindings: the reason code leads the message.
func TestRefusalReachesA2AClient(t *testing.T) {
	e := newEnv(t)
	ag := startAgent(t)
	for _, tc := range []struct {
		binding a2a.TransportProtocol
		path    string
	}{{a2a.TransportProtocolJSONRPC, "/"}, {a2a.TransportProtocolHTTPJSON, "/rest"}} {
		in, _ := e.inbound(ag.url, nil)
		out := e.outbound("https://"+startGate(t, in, "tcp"), &rotSVID{s: e.svid("/agent/procurement")})
		client := a2aClient(t, startGate(t, out, "unix"), tc.binding, tc.path)
		msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("release"))
		// procurement may not release payments: default deny.
		msg.Metadata = map[string]any{"warden.action": "invoice.post", "warden.resource": "Invoice/INV-1", "warden.amount": 10, "warden.currency": "EUR"}
		_, err := client.SendMessage(context.Background(), &a2a.SendMessageRequest{Message: msg})
		if err == nil || !strings.Contains(err.Error(), "default_deny") {
			t.Errorf("%s: err = %v, want one carrying default_deny", tc.binding, err)
			continue
		}
		// The decision id reaches the caller in the ErrorInfo metadata a2a-go keeps.
		var ae *a2a.Error
		if !errors.As(err, &ae) {
			t.Errorf("%s: %T is not an *a2a.Error", tc.binding, err)
			continue
		}
		meta, _ := ae.ErrorInfo().Value["metadata"].(map[string]string)
		if meta["reason"] != "default_deny" || !strings.HasPrefix(meta["decision_id"], "dec_") {
			t.Errorf("%s: ErrorInfo metadata %v", tc.binding, ae.ErrorInfo().Value)
		}
		// A refused streaming call ends the stream with the refusal, not silently.
		var serr error
		events := 0
		for _, err := range client.SendStreamingMessage(context.Background(), &a2a.SendMessageRequest{Message: msg}) {
			if err != nil {
				serr = err
				break
			}
			events++
		}
		if serr == nil || !strings.Contains(serr.Error(), "default_deny") || events != 0 {
			t.Errorf("%s: streaming refusal: err %v after %d events", tc.binding, serr, events)
		}
	}
}

// caller makes raw calls to an inbound gate as some TLS identity, signing intents itself.
type caller struct {
	t      *testing.T
	client *http.Client
	url    string
	svid   *x509svid.SVID
}

func (e *env) caller(t *testing.T, gateAddr string, svid *x509svid.SVID) *caller {
	tc := tlsconfig.MTLSClientConfig(staticSource{svid}, e.ca.X509Bundle(), tlsconfig.AuthorizeAny())
	return &caller{t: t, url: "https://" + gateAddr, svid: svid, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}}
}

type staticSource struct{ s *x509svid.SVID }

func (s staticSource) GetX509SVID() (*x509svid.SVID, error) { return s.s, nil }

func rpcBody(action, resource string) []byte {
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("hi"))
	// amount and currency: the parameters purchase_order.create and the payment
	// actions declare (ignored by the others).
	msg.Metadata = map[string]any{"warden.action": action, "warden.amount": 100, "warden.currency": "EUR"}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": "1", "method": "SendMessage", "params": map[string]any{"message": msg}})
	return b
}

type rpcAnswer struct {
	Error  *rpcError       `json:"error"`
	Result json.RawMessage `json:"result"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    []struct {
		Type     string            `json:"@type"`
		Reason   string            `json:"reason"`
		Metadata map[string]string `json:"metadata"`
	} `json:"data"`
}

func (e *rpcError) reason() string {
	if len(e.Data) != 1 || e.Data[0].Type != "type.googleapis.com/google.rpc.ErrorInfo" {
		return "(bad data)"
	}
	return e.Data[0].Metadata["reason"]
}

// do sends body with the intent tok (signed by sign when tok is "") and returns the
// JSON-RPC answer.
func (c *caller) do(body []byte, tok string) (int, rpcAnswer) {
	req, _ := http.NewRequest(http.MethodPost, c.url+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set(sdk.IntentHeader, tok)
	}
	res, err := c.client.Do(req)
	if err != nil {
		c.t.Fatalf("call: %v", err)
	}
	defer res.Body.Close()
	var a rpcAnswer
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &a)
	return res.StatusCode, a
}

func (c *caller) sign(in sdk.Intent, body []byte) string {
	tok, err := sdk.SignIntent(c.svid.Certificates[0], c.svid.PrivateKey, in, body, time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	return tok
}

func poIntent() sdk.Intent {
	return sdk.Intent{Audience: agentID("vendor-portal").String(), Action: "purchase_order.create", Resource: "Order/PO-1"}
}

// TestAttacksRefused: each attack of the threat model is refused with its reason code,
// a decision id in data and an audit event; the agent never sees it.
func TestAttacksRefused(t *testing.T) {
	e := newEnv(t)
	ag := startAgent(t)
	in, _ := e.inbound(ag.url, nil)
	addr := startGate(t, in, "tcp")
	proc := e.svid("/agent/procurement")
	c := e.caller(t, addr, proc)
	body := rpcBody("purchase_order.create", "Order/PO-1")

	// Happy path first, and the token kept for the replay.
	tok := c.sign(poIntent(), body)
	if st, a := c.do(body, tok); st != 200 || a.Error != nil {
		t.Fatalf("happy path: %d %+v", st, a.Error)
	}
	seen := len(ag.seen)

	tests := []struct {
		name   string
		do     func() (int, rpcAnswer)
		reason string
	}{
		{"replayed intent", func() (int, rpcAnswer) { return c.do(body, tok) }, "replay"},
		{"tampered body", func() (int, rpcAnswer) {
			t2 := c.sign(poIntent(), body)
			return c.do(bytes.Replace(body, []byte(`"hi"`), []byte(`"HI"`), 1), t2)
		}, "body_mismatch"},
		{"wrong audience", func() (int, rpcAnswer) {
			in := poIntent()
			in.Audience = agentID("logistics").String()
			return c.do(body, c.sign(in, body))
		}, "wrong_audience"},
		{"no intent", func() (int, rpcAnswer) { return c.do(body, "") }, "malformed"},
		{"intent lifted onto another identity's connection", func() (int, rpcAnswer) {
			other := e.caller(t, addr, e.svid("/agent/demand-planner"))
			return other.do(body, c.sign(poIntent(), body))
		}, "channel_mismatch"},
		{"role without permission", func() (int, rpcAnswer) {
			dp := e.caller(t, addr, e.svid("/agent/demand-planner"))
			in := poIntent()
			return dp.do(body, dp.sign(in, body))
		}, "policy_deny"},
		{"unknown peer", func() (int, rpcAnswer) {
			x := e.caller(t, addr, e.svid("/agent/stranger"))
			return x.do(body, x.sign(poIntent(), body))
		}, "unknown_peer"},
		{"push config refused", func() (int, rpcAnswer) {
			b := []byte(`{"jsonrpc":"2.0","id":"9","method":"CreateTaskPushNotificationConfig","params":{}}`)
			return c.do(b, c.sign(poIntent(), b))
		}, "method_not_allowed"},
		{"unknown method", func() (int, rpcAnswer) {
			b := []byte(`{"jsonrpc":"2.0","id":"9","method":"message/send","params":{}}`)
			return c.do(b, c.sign(poIntent(), b))
		}, "unknown_method"},
	}
	ids := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, a := tc.do()
			if st != 200 || a.Error == nil {
				t.Fatalf("status %d error %+v: not refused", st, a.Error)
			}
			if a.Error.reason() != tc.reason || !strings.HasPrefix(a.Error.Message, tc.reason) {
				t.Errorf("reason %q message %q, want %q", a.Error.reason(), a.Error.Message, tc.reason)
			}
			id := a.Error.Data[0].Metadata["decision_id"]
			if !strings.HasPrefix(id, "dec_") || ids[id] {
				t.Errorf("decision id %q missing or reused", id)
			}
			ids[id] = true
			if ev := e.events.last(); ev.DecisionID != id || ev.Allow || ev.Reason != tc.reason {
				t.Errorf("audit event %+v", ev)
			}
		})
	}
	if len(ag.seen) != seen {
		t.Errorf("the agent received %d refused calls", len(ag.seen)-seen)
	}

	t.Run("revoked agent", func(t *testing.T) {
		e.publish(func(d *truststate.Document) {
			d.RevokedIDs = map[string]truststate.Revocation{proc.ID.String(): {Reason: "key leaked"}}
		})
		defer e.publish(func(*truststate.Document) {})
		st, a := c.do(body, c.sign(poIntent(), body))
		if a.Error == nil || a.Error.reason() != "identity_revoked" {
			t.Fatalf("status %d answer %+v", st, a.Error)
		}
	})
	t.Run("suspended agent", func(t *testing.T) {
		e.publish(func(d *truststate.Document) {
			d.Agents = map[string]truststate.AgentState{proc.ID.String(): {Status: truststate.StatusSuspended}}
		})
		defer e.publish(func(*truststate.Document) {})
		_, a := c.do(body, c.sign(poIntent(), body))
		if a.Error == nil || a.Error.reason() != "agent_suspended" {
			t.Fatalf("answer %+v", a.Error)
		}
	})
	t.Run("kill switch", func(t *testing.T) {
		e.publish(func(d *truststate.Document) {
			d.KillSwitches = []truststate.KillSwitch{{Scope: "action", Value: "purchase_order.create", Reason: "incident"}}
		})
		defer e.publish(func(*truststate.Document) {})
		_, a := c.do(body, c.sign(poIntent(), body))
		if a.Error == nil || a.Error.reason() != "kill_switch" {
			t.Fatalf("answer %+v", a.Error)
		}
	})
}

// TestSelfSignedImpersonation: a self-signed certificate claiming procurement's SPIFFE ID
// fails the TLS handshake; nothing reaches the pipeline.
func TestSelfSignedImpersonation(t *testing.T) {
	e := newEnv(t)
	in, _ := e.inbound(startAgent(t).url, nil)
	addr := startGate(t, in, "tcp")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse(agentID("procurement").String())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "procurement"}, URIs: []*url.URL{u},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}}
	res, err := client.Post("https://"+addr+"/", "application/json", strings.NewReader(`{}`))
	if err == nil {
		res.Body.Close()
		t.Fatalf("a self-signed certificate got status %d", res.StatusCode)
	}
}

// TestForgedHeadersStripped: Warden-Peer-Id / Warden-Decision-Id from outside never
// reach the agent.
func TestForgedHeadersStripped(t *testing.T) {
	e := newEnv(t)
	ag := startAgent(t)
	in, _ := e.inbound(ag.url, nil)
	c := e.caller(t, startGate(t, in, "tcp"), e.svid("/agent/procurement"))
	body := rpcBody("purchase_order.create", "Order/PO-1")
	req, _ := http.NewRequest(http.MethodPost, c.url+"/", bytes.NewReader(body))
	req.Header.Set(sdk.IntentHeader, c.sign(poIntent(), body))
	req.Header.Set(gate.HeaderPeerID, "spiffe://supplychain.example/agent/payment-release")
	req.Header.Set(gate.HeaderDecisionID, "dec_forged")
	res, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	h := ag.lastHeader()
	if h.Get(gate.HeaderPeerID) != agentID("procurement").String() || h.Get(gate.HeaderDecisionID) == "dec_forged" || len(h.Values(gate.HeaderPeerID)) != 1 {
		t.Errorf("agent saw %v", h)
	}
}
