package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
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
	// params.metadata for other methods; nil when absent. Values the gate reads:
	// "warden.action", "warden.resource", "warden.workflow", "warden.amount".
	Metadata map[string]any
}

// ErrUnknownMethod is returned by Classify for a request that is not an A2A method the
// gate knows; such requests are refused with ReasonUnknownMethod.
var ErrUnknownMethod = errors.New("gate: not a known A2A method")

// maxJSONDepth bounds the nesting Classify accepts before decoding.
const maxJSONDepth = 64

// Classify reads the A2A method of a request. JSON-RPC: a POST whose body is one JSON-RPC
// 2.0 request object (batches are refused); HTTP+JSON: the method and path of A2A 1.0
// §11.3 (`POST /message:send`, `GET /tasks/{id}`, ...), with an optional tenant prefix.
// Everything else is ErrUnknownMethod, with the Call's Binding (and JSON-RPC id) set as
// far as they could be read, so the refusal goes out in the caller's binding.
func Classify(method, path string, body []byte) (Call, error) {
	if c, ok := classifyREST(method, path); ok {
		if c.Method == MethodSendMessage || c.Method == MethodSendStreaming {
			c.Metadata = restMetadata(body)
		}
		return c, nil
	}
	if method != http.MethodPost {
		return Call{Binding: BindingREST}, ErrUnknownMethod
	}
	return classifyJSONRPC(body)
}

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	ID      json.RawMessage `json:"id"`
	Params  *struct {
		Message *struct {
			Metadata map[string]any `json:"metadata"`
		} `json:"message"`
		Metadata map[string]any `json:"metadata"`
	} `json:"params"`
}

func classifyJSONRPC(body []byte) (Call, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || tooDeep(body) {
		return Call{Binding: BindingREST}, ErrUnknownMethod
	}
	var req rpcRequest
	if err := json.Unmarshal(body, &req); err != nil || req.JSONRPC != "2.0" {
		return Call{Binding: BindingREST}, ErrUnknownMethod
	}
	kind, ok := methodKinds[req.Method]
	if !ok {
		// A JSON-RPC envelope with a method the gate does not know: refused in JSON-RPC.
		return Call{Binding: BindingJSONRPC, ID: req.ID}, ErrUnknownMethod
	}
	c := Call{Binding: BindingJSONRPC, Method: req.Method, Kind: kind, ID: req.ID,
		Streaming: req.Method == MethodSendStreaming || req.Method == MethodSubscribeToTask}
	if req.Params != nil {
		if req.Params.Message != nil && req.Params.Message.Metadata != nil {
			c.Metadata = req.Params.Message.Metadata
		} else {
			c.Metadata = req.Params.Metadata
		}
	}
	return c, nil
}

func classifyREST(method, path string) (Call, bool) {
	c := Call{Binding: BindingREST}
	// A tenant prefix ("/{tenant}/message:send") is allowed: match on the tail.
	switch {
	case method == http.MethodPost && strings.HasSuffix(path, "/message:send"):
		c.Method = MethodSendMessage
	case method == http.MethodPost && strings.HasSuffix(path, "/message:stream"):
		c.Method, c.Streaming = MethodSendStreaming, true
	case method == http.MethodGet && strings.HasSuffix(path, "/extendedAgentCard"):
		c.Method = MethodGetExtendedCard
	default:
		i := strings.Index(path, "/tasks")
		if i < 0 {
			return c, false
		}
		rest := strings.Split(strings.TrimPrefix(path[i:], "/tasks"), "/")
		// rest[0] == "" always (path continues with "/" or ends)
		switch {
		case len(rest) == 1 && rest[0] == "" && method == http.MethodGet:
			c.Method = MethodListTasks
		case len(rest) == 2 && rest[1] != "":
			id := rest[1]
			switch {
			case method == http.MethodPost && strings.HasSuffix(id, ":cancel"):
				c.Method = MethodCancelTask
			case method == http.MethodPost && strings.HasSuffix(id, ":subscribe"),
				method == http.MethodGet && strings.HasSuffix(id, ":subscribe"):
				c.Method, c.Streaming = MethodSubscribeToTask, true
			case method == http.MethodGet && !strings.Contains(id, ":"):
				c.Method = MethodGetTask
			default:
				return c, false
			}
		case len(rest) == 3 && rest[2] == "pushNotificationConfigs":
			switch method {
			case http.MethodPost:
				c.Method = MethodCreatePushConfig
			case http.MethodGet:
				c.Method = MethodListPushConfigs
			default:
				return c, false
			}
		case len(rest) == 4 && rest[2] == "pushNotificationConfigs" && rest[3] != "":
			switch method {
			case http.MethodGet:
				c.Method = MethodGetPushConfig
			case http.MethodDelete:
				c.Method = MethodDeletePushConfig
			default:
				return c, false
			}
		default:
			return c, false
		}
	}
	c.Kind = methodKinds[c.Method]
	return c, true
}

func restMetadata(body []byte) map[string]any {
	if len(body) == 0 || tooDeep(body) {
		return nil
	}
	var req struct {
		Message *struct {
			Metadata map[string]any `json:"metadata"`
		} `json:"message"`
	}
	if json.Unmarshal(body, &req) != nil || req.Message == nil {
		return nil
	}
	return req.Message.Metadata
}

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

// metaString returns metadata[key] when it is a non-empty string.
func metaString(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// metaInt returns metadata[key] as a whole number (JSON number or decimal string).
func metaInt(m map[string]any, key string) int64 {
	switch v := m[key].(type) {
	case float64:
		if v >= 0 && v < 1<<53 {
			return int64(v)
		}
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	return 0
}
