package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// columns are the copies of event fields that the store keeps beside the canonical bytes
// so that queries can filter without decoding every record (audit_records: id, kind,
// time_ns, workflow, caller, callee, decision, action, reason). They are not in the
// Merkle tree, so Verify re-derives them from the canonical bytes of every record and
// fails on any difference: a query never filters on a value that verify did not check.
type columns struct {
	ID       string
	Kind     string
	TimeNS   int64
	Workflow string
	Caller   string // caller, or subject for lifecycle events
	Callee   string
	Decision string
	Action   string
	Reason   string
}

func columnsOf(e *Entry) columns {
	return columns{ID: e.ID, Kind: string(e.Kind), TimeNS: e.Time.UnixNano(), Workflow: e.Workflow,
		Caller: e.Caller, Callee: e.Callee, Decision: e.Decision, Action: e.Action, Reason: e.Reason}
}

// diff names the first column of stored that differs from want ("" when equal).
func (want columns) diff(stored columns) string {
	switch {
	case stored.ID != want.ID:
		return "id"
	case stored.Kind != want.Kind:
		return "kind"
	case stored.TimeNS != want.TimeNS:
		return "time"
	case stored.Workflow != want.Workflow:
		return "workflow"
	case stored.Caller != want.Caller:
		return "caller"
	case stored.Callee != want.Callee:
		return "callee"
	case stored.Decision != want.Decision:
		return "decision"
	case stored.Action != want.Action:
		return "action"
	case stored.Reason != want.Reason:
		return "reason"
	}
	return ""
}

var errNotCanonical = errors.New("not a canonical event")

// columnsFromCanonical extracts the filter columns from an event's canonical bytes
// (Event.Canonical: one compact JSON object, no duplicate keys). It reads only the
// top-level members it needs and skips the others without decoding them, which keeps
// verifying a million events within seconds; FuzzColumnsFromCanonical checks it against
// encoding/json. Input that is not such an object is errNotCanonical.
func columnsFromCanonical(data []byte) (columns, error) {
	var c columns
	var subject, ts string
	p := scanner{b: data}
	if !p.byte('{') {
		return c, errNotCanonical
	}
	seen := 0
	for first := true; ; first = false {
		if p.peek() == '}' && first {
			p.i++
			break
		}
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return c, errNotCanonical
		}
		var dst *string
		var bit int
		switch key {
		case "id":
			dst, bit = &c.ID, 1
		case "kind":
			dst, bit = &c.Kind, 2
		case "time":
			dst, bit = &ts, 4
		case "workflow_id":
			dst, bit = &c.Workflow, 8
		case "caller":
			dst, bit = &c.Caller, 16
		case "callee":
			dst, bit = &c.Callee, 32
		case "decision":
			dst, bit = &c.Decision, 64
		case "action":
			dst, bit = &c.Action, 128
		case "reason":
			dst, bit = &c.Reason, 256
		case "subject":
			dst, bit = &subject, 512
		}
		if dst != nil {
			if seen&bit != 0 {
				return c, errNotCanonical // duplicate key
			}
			seen |= bit
			if *dst, ok = p.str(); !ok {
				return c, errNotCanonical
			}
		} else if !p.skip(0) {
			return c, errNotCanonical
		}
		if p.byte(',') {
			continue
		}
		if !p.byte('}') {
			return c, errNotCanonical
		}
		break
	}
	if p.i != len(data) {
		return c, errNotCanonical
	}
	if c.Caller == "" {
		c.Caller = subject
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return c, fmt.Errorf("%w: time %q", errNotCanonical, ts)
	}
	c.TimeNS = t.UnixNano()
	return c, nil
}

// scanner walks compact JSON (no white space: canonical bytes have none).
type scanner struct {
	b []byte
	i int
}

func (p *scanner) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *scanner) byte(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// strEnd returns the index just past the closing quote of the string at p.i, and
// whether it contains an escape.
func (p *scanner) strEnd() (int, bool, bool) {
	if p.peek() != '"' {
		return 0, false, false
	}
	esc := false
	for j := p.i + 1; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '\\':
			esc = true
			j++ // the escaped byte (a \uXXXX's digits are plain bytes)
		case c == '"':
			return j + 1, esc, true
		case c < 0x20:
			return 0, false, false
		}
	}
	return 0, false, false
}

// str decodes the string at p.i: a slice copy when it has no escape, encoding/json's
// decoding when it has one.
func (p *scanner) str() (string, bool) {
	end, esc, ok := p.strEnd()
	if !ok {
		return "", false
	}
	raw := p.b[p.i:end]
	p.i = end
	if !esc {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// skip steps over one value of any type, nested at most 32 deep.
func (p *scanner) skip(depth int) bool {
	if depth > 32 {
		return false
	}
	switch c := p.peek(); {
	case c == '"':
		end, _, ok := p.strEnd()
		p.i = end
		return ok
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		p.i++
		if p.byte(closer) {
			return true
		}
		for {
			if c == '{' {
				if _, ok := p.str(); !ok || !p.byte(':') {
					return false
				}
			}
			if !p.skip(depth + 1) {
				return false
			}
			if p.byte(',') {
				continue
			}
			return p.byte(closer)
		}
	default: // number, true, false, null
		start := p.i
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case ',', '}', ']':
				return p.i > start
			}
			p.i++
		}
		return false
	}
}
