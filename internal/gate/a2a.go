package gate

import (
	"encoding/json"

	"github.com/warden-a2a/warden/internal/jcs"
)

// Binding is the A2A protocol binding a request arrived on (A2A 1.0 §3.2).
type Binding int

const (
	BindingJSONRPC Binding = iota // JSON-RPC 2.0 over HTTP POST
	BindingREST                   // HTTP+JSON
)

// A2A 1.0 method names, as the JSON-RPC binding spells them (a2a-go v2.3.1
// internal/jsonrpc). The HTTP+JSON binding is mapped onto the same names.
const (
	MethodSendMessage      = "SendMessage"
	MethodSendStreaming    = "SendStreamingMessage"
	MethodGetTask          = "GetTask"
	MethodListTasks        = "ListTasks"
	MethodCancelTask       = "CancelTask"
	MethodSubscribeToTask  = "SubscribeToTask"
	MethodGetPushConfig    = "GetTaskPushNotificationConfig"
	MethodCreatePushConfig = "CreateTaskPushNotificationConfig"
	MethodListPushConfigs  = "ListTaskPushNotificationConfigs"
	MethodDeletePushConfig = "DeleteTaskPushNotificationConfig"
	MethodGetExtendedCard  = "GetExtendedAgentCard"
)

// Kind says what a method does to the receiving agent's state.
type Kind string

const (
	KindWrite  Kind = "write"  // sends work or changes task state
	KindRead   Kind = "read"   // reads tasks or configuration
	KindConfig Kind = "config" // changes where the agent calls back (push notifications)
)

var methodKinds = map[string]Kind{
	MethodSendMessage:      KindWrite,
	MethodSendStreaming:    KindWrite,
	MethodCancelTask:       KindWrite,
	MethodGetTask:          KindRead,
	MethodListTasks:        KindRead,
	MethodSubscribeToTask:  KindRead,
	MethodGetPushConfig:    KindRead,
	MethodListPushConfigs:  KindRead,
	MethodGetExtendedCard:  KindRead,
	MethodCreatePushConfig: KindConfig,
	MethodDeletePushConfig: KindConfig,
}

// Call is what the gate learned about one A2A request from its method line and body.
type Call struct {
	Binding   Binding
	Method    string          // one of the Method constants
	Kind      Kind            // what the method does
	Streaming bool            // the answer is an SSE stream
	ID        json.RawMessage // JSON-RPC request id (nil for HTTP+JSON or notifications)
	// Metadata is params.message.metadata (SendMessage / SendStreamingMessage), or
	// params.metadata for other methods, as the one strict parse of the body read it;
	// of kind jcs.Invalid when absent. Keys the gate reads: "warden.action",
	// "warden.resource", "warden.workflow", "warden.approval" (outbound) and the
	// business parameters the action declares (policy.Param).
	Metadata jcs.Value
}

// maxJSONDepth bounds the nesting of the JSON documents the gate decodes with
// encoding/json (agent cards); request bodies are bounded by jcs.MaxDepth.
const maxJSONDepth = 64

// tooDeep reports whether b nests arrays/objects deeper than maxJSONDepth (ignoring
// brackets inside strings), so a hostile body cannot make the decoder recurse deeply.
func tooDeep(b []byte) bool {
	depth, inStr, esc := 0, false, false
	for _, c := range b {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			if depth > maxJSONDepth {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

// metaString returns metadata[key] when it is a string.
func metaString(m jcs.Value, key string) string {
	s, _ := m.Get(key).Str()
	return s
}
