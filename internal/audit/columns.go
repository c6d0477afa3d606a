package audit

import (
	"bytes"
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

// Members of an event that the filter columns copy, in rawColumns.f.
const (
	fID = iota
	fKind
	fTime
	fWorkflow
	fCaller
	fCallee
	fSubject
	fDecision
	fAction
	fReason
	nFields
)

// fieldIndex returns the rawColumns index of a member name, or -1.
func fieldIndex(key []byte) int {
	switch string(key) { // compiled to comparisons, no allocation
	case "id":
		return fID
	case "kind":
		return fKind
	case "time":
		return fTime
	case "workflow_id":
		return fWorkflow
	case "caller":
		return fCaller
	case "callee":
		return fCallee
	case "subject":
		return fSubject
	case "decision":
		return fDecision
	case "action":
		return fAction
	case "reason":
		return fReason
	}
	return -1
}

// rawColumns are the column members of one event as slices of its canonical bytes
// (between the quotes); esc marks the ones with an escape, which need decoding.
type rawColumns struct {
	f   [nFields][]byte
	esc uint16
}

// scanColumns finds the column members in an event's canonical bytes (Event.Canonical:
// one compact JSON object, no duplicate keys) without allocating. It reads only the
// top-level members it needs and skips the others; FuzzColumnsFromCanonical checks it
// against encoding/json. Input that is not such an object is errNotCanonical.
func scanColumns(data []byte, rc *rawColumns) error {
	*rc = rawColumns{}
	p := scanner{b: data}
	if !p.byte('{') {
		return errNotCanonical
	}
	seen := 0
	for first := true; ; first = false {
		if first && p.byte('}') {
			break
		}
		kend, kesc, ok := p.strEnd()
		if !ok || kesc {
			return errNotCanonical // no member this log writes has an escaped name
		}
		key := data[p.i+1 : kend-1]
		p.i = kend
		if !p.byte(':') {
			return errNotCanonical
		}
		if i := fieldIndex(key); i >= 0 {
			if seen&(1<<i) != 0 {
				return errNotCanonical // duplicate key
			}
			seen |= 1 << i
			end, esc, ok := p.strEnd()
			if !ok {
				return errNotCanonical
			}
			rc.f[i] = data[p.i+1 : end-1]
			if esc {
				rc.esc |= 1 << i
			}
			p.i = end
		} else if !p.skip(0) {
			return errNotCanonical
		}
		if p.byte(',') {
			continue
		}
		if !p.byte('}') {
			return errNotCanonical
		}
		break
	}
	if p.i != len(data) {
		return errNotCanonical
	}
	return nil
}

// value returns member i decoded.
func (rc *rawColumns) value(i int) (string, error) {
	if rc.esc&(1<<i) == 0 {
		return string(rc.f[i]), nil
	}
	var s string
	b := make([]byte, 0, len(rc.f[i])+2)
	b = append(append(append(b, '"'), rc.f[i]...), '"')
	if err := json.Unmarshal(b, &s); err != nil {
		return "", errNotCanonical
	}
	return s, nil
}

// equal reports whether member i decoded equals col.
func (rc *rawColumns) equal(i int, col []byte) bool {
	if rc.esc&(1<<i) == 0 {
		return string(rc.f[i]) == string(col) // no allocation: compared in place
	}
	v, err := rc.value(i)
	return err == nil && v == string(col)
}

// timeNS parses the time member: UTC RFC 3339 as encoding/json writes it.
func (rc *rawColumns) timeNS() (int64, error) {
	if t, ok := parseUTC(rc.f[fTime]); ok {
		return t, nil
	}
	v, err := rc.value(fTime)
	if err != nil {
		return 0, err
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, fmt.Errorf("%w: time %q", errNotCanonical, v)
	}
	return t.UnixNano(), nil
}

// parseUTC parses "YYYY-MM-DDTHH:MM:SS[.fraction]Z" without allocating; ok false for
// any other shape (the caller then uses time.Parse).
func parseUTC(b []byte) (int64, bool) {
	if len(b) < 20 || b[len(b)-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	h, ok4 := num(b[11:13])
	mi, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 {
		return 0, false
	}
	ns := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return 0, false
		}
		n, ok := num(frac[1:])
		if !ok {
			return 0, false
		}
		for i := len(frac) - 1; i < 9; i++ {
			n *= 10
		}
		ns = n
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC)
	if t.Day() != d { // 31 February and the like
		return 0, false
	}
	return t.UnixNano(), true
}

// storedColumns are an audit_records row's filter columns as read (no copies).
type storedColumns struct {
	id, kind, workflow, caller, callee, decision, action, reason []byte
	timeNS                                                       int64
}

// check compares a row's filter columns with its canonical bytes and names the first
// that differs ("" when all are equal).
func (sc *storedColumns) check(data []byte) (string, error) {
	var rc rawColumns
	if err := scanColumns(data, &rc); err != nil {
		return "", err
	}
	t, err := rc.timeNS()
	if err != nil {
		return "", err
	}
	caller := fCaller
	if len(rc.f[fCaller]) == 0 {
		caller = fSubject
	}
	switch {
	case !rc.equal(fID, sc.id):
		return "id", nil
	case !rc.equal(fKind, sc.kind):
		return "kind", nil
	case t != sc.timeNS:
		return "time", nil
	case !rc.equal(fWorkflow, sc.workflow):
		return "workflow", nil
	case !rc.equal(caller, sc.caller):
		return "caller", nil
	case !rc.equal(fCallee, sc.callee):
		return "callee", nil
	case !rc.equal(fDecision, sc.decision):
		return "decision", nil
	case !rc.equal(fAction, sc.action):
		return "action", nil
	case !rc.equal(fReason, sc.reason):
		return "reason", nil
	}
	return "", nil
}

// columnsFromCanonical returns the columns an append stores for an event, read from its
// canonical bytes (migration, tests).
func columnsFromCanonical(data []byte) (columns, error) {
	var rc rawColumns
	if err := scanColumns(data, &rc); err != nil {
		return columns{}, err
	}
	var c columns
	var err error
	for _, f := range []struct {
		dst *string
		i   int
	}{{&c.ID, fID}, {&c.Kind, fKind}, {&c.Workflow, fWorkflow}, {&c.Caller, fCaller}, {&c.Callee, fCallee},
		{&c.Decision, fDecision}, {&c.Action, fAction}, {&c.Reason, fReason}} {
		if *f.dst, err = rc.value(f.i); err != nil {
			return columns{}, err
		}
	}
	if c.Caller == "" {
		if c.Caller, err = rc.value(fSubject); err != nil {
			return columns{}, err
		}
	}
	if c.TimeNS, err = rc.timeNS(); err != nil {
		return columns{}, err
	}
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
// whether it contains an escape. Canonical bytes have no raw control characters
// (encoding/json escapes them), so only quotes and backslashes matter.
func (p *scanner) strEnd() (int, bool, bool) {
	if p.peek() != '"' {
		return 0, false, false
	}
	from := p.i + 1
	esc := false
	for {
		q := bytes.IndexByte(p.b[from:], '"')
		if q < 0 {
			return 0, false, false
		}
		q += from
		// The quote is escaped when an odd number of backslashes precede it.
		bs := 0
		for k := q - 1; k > p.i && p.b[k] == '\\'; k-- {
			bs++
		}
		if !esc && bytes.IndexByte(p.b[from:q], '\\') >= 0 {
			esc = true
		}
		if bs%2 == 0 {
			return q + 1, esc, true
		}
		from = q + 1
	}
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
				end, _, ok := p.strEnd()
				if !ok {
					return false
				}
				p.i = end
				if !p.byte(':') {
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
