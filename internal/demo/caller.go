package demo

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/warden-a2a/warden/sdk"
)

// CallResult is one call to a gate as the caller saw it.
type CallResult struct {
	Observed   string // allow | deny
	Reason     string // the refusal's message ("replay: intent refused"), or the result
	Code       string // the refusal's reason code (data[0].metadata.reason)
	DecisionID string
	ApprovalID string // approval_required: the approval filed
}

// RPCMessage is a JSON-RPC SendMessage body carrying text and metadata.
func RPCMessage(text string, meta map[string]any) []byte {
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart(text))
	msg.Metadata = meta
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": "1", "method": "SendMessage", "params": map[string]any{"message": msg}})
	return b
}

// CallAs posts body to the inbound or legacy gate at addr over mTLS as caller, with a
// fresh intent for in signed with the caller's current SVID.
func CallAs(ctx context.Context, caller *Agent, addr string, in sdk.Intent, body []byte) CallResult {
	conf, err := caller.MTLS()
	if err != nil {
		return CallResult{Observed: "deny", Reason: "demo: " + err.Error()}
	}
	tok, err := caller.Sign(in, body)
	if err != nil {
		return CallResult{Observed: "deny", Reason: "demo: sign: " + err.Error()}
	}
	return CallGate(ctx, conf, addr, body, tok)
}

// CallGate posts a JSON-RPC body to the gate at addr (https) with conf and the intent
// tok (none when ""), and reads the answer as a2a-go would: a JSON-RPC error with the
// reason code in data[0].metadata, or a result. A failed handshake is a refusal
// (untrusted_certificate) with the TLS error.
func CallGate(ctx context.Context, conf *tls.Config, addr string, body []byte, tok string) CallResult {
	return CallGatePath(ctx, conf, addr, http.MethodPost, "/", nil, body, tok)
}

// CallGatePath is CallGate with the method, the (escaped) path and extra header fields
// set as given, key spelling included (a key such as "Warden_Peer_Id" is sent as is).
// A refusal on the HTTP+JSON binding (a google.rpc.Status body) is read as well.
func CallGatePath(ctx context.Context, conf *tls.Config, addr, method, path string, header http.Header, body []byte, tok string) CallResult {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
	defer client.CloseIdleConnections()
	return callGate(ctx, client, addr, method, path, header, body, tok)
}

// CallGateWith is CallGate on a client of the caller's (one whose connections stay open
// between calls, say).
func CallGateWith(ctx context.Context, client *http.Client, addr string, body []byte, tok string) CallResult {
	return callGate(ctx, client, addr, http.MethodPost, "/", nil, body, tok)
}

func callGate(ctx context.Context, client *http.Client, addr, method, path string, header http.Header, body []byte, tok string) CallResult {
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return CallResult{Observed: "deny", Reason: "demo: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	if tok != "" {
		req.Header.Set(sdk.IntentHeader, tok)
	}
	res, err := client.Do(req)
	if err != nil {
		return CallResult{Observed: "deny", Code: "untrusted_certificate", Reason: "untrusted_certificate: TLS handshake refused (" + lastLine(err) + ")"}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	var ans struct {
		Error *struct {
			Message string `json:"message"`
			Data    []struct {
				Metadata map[string]string `json:"metadata"`
			} `json:"data"`
		} `json:"error"`
		Result json.RawMessage `json:"result"`
	}
	var status struct { // HTTP+JSON refusal: google.rpc.Status
		Error *struct {
			Message string `json:"message"`
			Details []struct {
				Metadata map[string]string `json:"metadata"`
			} `json:"details"`
		} `json:"error"`
	}
	if res.StatusCode != http.StatusOK && json.Unmarshal(b, &status) == nil && status.Error != nil && len(status.Error.Details) > 0 {
		m := status.Error.Details[0].Metadata
		return CallResult{Observed: "deny", Reason: fmt.Sprintf("%s (HTTP %d)", status.Error.Message, res.StatusCode), Code: m["reason"], DecisionID: m["decision_id"]}
	}
	if json.Unmarshal(b, &ans) != nil {
		return CallResult{Observed: "deny", Reason: fmt.Sprintf("status %d: %s", res.StatusCode, b)}
	}
	if ans.Error != nil {
		out := CallResult{Observed: "deny", Reason: ans.Error.Message}
		if len(ans.Error.Data) > 0 {
			m := ans.Error.Data[0].Metadata
			out.Code, out.DecisionID, out.ApprovalID = m["reason"], m["decision_id"], m["approval_id"]
		}
		return out
	}
	return CallResult{Observed: "allow", Reason: string(ans.Result), DecisionID: res.Header.Get("Warden-Decision-Id")}
}

// lastLine is the innermost part of a wrapped error message ("bad certificate").
func lastLine(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// curlCommand shows a gate call as an operator would make it by hand: the intent signed
// with `warden intent sign`, the call made with curl (-k: curl cannot check a SPIFFE ID;
// the gate still checks the client's SVID).
func curlCommand(s *Stack, caller *Agent, addr string, in sdk.Intent) string {
	sign := []string{"intent", "sign", "--cert", caller.Dir + "/svid.pem", "--key", caller.Dir + "/svid_key.pem",
		"--aud", in.Audience, "--act", in.Action}
	if in.Resource != "" {
		sign = append(sign, "--res", in.Resource)
	}
	if in.Workflow != "" {
		sign = append(sign, "--wf", in.Workflow)
	}
	if in.Approval != "" {
		sign = append(sign, "--apr", in.Approval)
	}
	sign = append(sign, "--body", "body.json")
	return "INTENT=$(" + s.Procs.Show(sign...) + ")\n" +
		"curl -sk --cert " + s.show(caller.Dir+"/svid.pem") + " --key " + s.show(caller.Dir+"/svid_key.pem") +
		` -H "Warden-Intent: $INTENT" -H 'Content-Type: application/json' --data-binary @body.json https://` + addr + "/"
}

// show writes a path as the commands show it ($DIR/...).
func (s *Stack) show(p string) string { return strings.ReplaceAll(p, s.Dir, "$DIR") }
