package gate_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/gate"
)

// TestClassify: each A2A 1.0 method on each binding, and what is not one.
func TestClassify(t *testing.T) {
	rpc := func(m string) []byte {
		return []byte(`{"jsonrpc":"2.0","id":1,"method":"` + m + `","params":{"message":{"metadata":{"warden.action":"a"}}}}`)
	}
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		want               string
		kind               gate.Kind
		stream             bool
	}{
		{"jsonrpc send", "POST", "/", rpc("SendMessage"), gate.MethodSendMessage, gate.KindWrite, false},
		{"jsonrpc stream", "POST", "/", rpc("SendStreamingMessage"), gate.MethodSendStreaming, gate.KindWrite, true},
		{"jsonrpc get", "POST", "/", rpc("GetTask"), gate.MethodGetTask, gate.KindRead, false},
		{"jsonrpc list", "POST", "/", rpc("ListTasks"), gate.MethodListTasks, gate.KindRead, false},
		{"jsonrpc cancel", "POST", "/", rpc("CancelTask"), gate.MethodCancelTask, gate.KindWrite, false},
		{"jsonrpc push set", "POST", "/", rpc("CreateTaskPushNotificationConfig"), gate.MethodCreatePushConfig, gate.KindConfig, false},
		{"jsonrpc push get", "POST", "/", rpc("GetTaskPushNotificationConfig"), gate.MethodGetPushConfig, gate.KindRead, false},
		{"jsonrpc push list", "POST", "/", rpc("ListTaskPushNotificationConfigs"), gate.MethodListPushConfigs, gate.KindRead, false},
		{"jsonrpc push delete", "POST", "/", rpc("DeleteTaskPushNotificationConfig"), gate.MethodDeletePushConfig, gate.KindConfig, false},
		{"rest send", "POST", "/message:send", nil, gate.MethodSendMessage, gate.KindWrite, false},
		{"rest send with tenant", "POST", "/acme/message:send", nil, gate.MethodSendMessage, gate.KindWrite, false},
		{"rest stream", "POST", "/message:stream", nil, gate.MethodSendStreaming, gate.KindWrite, true},
		{"rest get", "GET", "/tasks/t1", nil, gate.MethodGetTask, gate.KindRead, false},
		{"rest list", "GET", "/tasks", nil, gate.MethodListTasks, gate.KindRead, false},
		{"rest cancel", "POST", "/tasks/t1:cancel", nil, gate.MethodCancelTask, gate.KindWrite, false},
		{"rest subscribe", "POST", "/tasks/t1:subscribe", nil, gate.MethodSubscribeToTask, gate.KindRead, true},
		{"rest push create", "POST", "/tasks/t1/pushNotificationConfigs", nil, gate.MethodCreatePushConfig, gate.KindConfig, false},
		{"rest push delete", "DELETE", "/tasks/t1/pushNotificationConfigs/c1", nil, gate.MethodDeletePushConfig, gate.KindConfig, false},
		{"jsonrpc old method name", "POST", "/", rpc("message/send"), "", "", false},
		{"jsonrpc batch", "POST", "/", []byte(`[` + string(rpc("SendMessage")) + `]`), "", "", false},
		{"jsonrpc 1.0", "POST", "/", []byte(`{"method":"SendMessage","id":1}`), "", "", false},
		{"get on root", "GET", "/", nil, "", "", false},
		{"rest delete task", "DELETE", "/tasks/t1", nil, "", "", false},
		{"deep nesting", "POST", "/", []byte(`{"jsonrpc":"2.0","method":"SendMessage","params":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`), "", "", false},
	} {
		c, err := gate.Classify(tc.method, tc.path, tc.body)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s: classified as %s", tc.name, c.Method)
			}
			continue
		}
		if err != nil || c.Method != tc.want || c.Kind != tc.kind || c.Streaming != tc.stream {
			t.Errorf("%s: %+v %v", tc.name, c, err)
		}
	}
}

func FuzzClassify(f *testing.F) {
	f.Add("POST", "/", []byte(`{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"metadata":{"warden.action":"a","warden.amount":5}}}}`))
	f.Add("GET", "/tasks/abc", []byte(nil))
	f.Add("POST", "/x/message:stream", []byte(`{"message":{"metadata":{}}}`))
	f.Add("DELETE", "/tasks/a/pushNotificationConfigs/b", []byte(nil))
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		c, err := gate.Classify(method, path, body)
		if err == nil && c.Method == "" {
			t.Fatalf("classified without a method: %q %q %q", method, path, body)
		}
		if err == nil && c.Binding == gate.BindingJSONRPC && !json.Valid(body) {
			t.Fatalf("invalid JSON classified as JSON-RPC: %q", body)
		}
	})
}

func FuzzVerifyCard(f *testing.F) {
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	e := &env{t: f, ca: c}
	svid := e.svid("/gate/vendor-portal")
	card, _ := gate.SignCard(&cardFixture, svid)
	f.Add(card)
	f.Add([]byte(`{"name":"x","signatures":[{"protected":"e30","signature":"AA"}]}`))
	f.Add([]byte(`{}`))
	bundle := c.X509Bundle()
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := gate.VerifyCard(raw, bundle, svid.ID)
		if err == nil && string(raw) != string(card) {
			// Only the signed bytes, or an equal JSON form of them, may verify.
			a, _ := gate.SignCard(got, svid) // fresh signature over what was accepted
			_ = a
			var x, y any
			_ = json.Unmarshal(raw, &x)
			_ = json.Unmarshal(card, &y)
			bx, _ := json.Marshal(x)
			by, _ := json.Marshal(y)
			if string(bx) != string(by) {
				t.Fatalf("a changed card verified: %q", raw)
			}
		}
	})
}
