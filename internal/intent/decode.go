package intent

import (
	"unicode/utf8"
)

// decoder reads a claims payload that must already be in RFC 8785 canonical form: no
// whitespace, members in strictly increasing key order (so no duplicates), canonical
// string escapes and integers. Any other byte sequence, even one that is valid JSON
// with the same meaning, is refused: two implementations can then never disagree on
// what was signed. Strings without escapes are sliced from s without copying.
type decoder struct {
	s   string
	i   int
	err *Error
}

func (d *decoder) fail(reason, detail string) {
	if d.err == nil {
		d.err = refuse(reason, detail)
	}
}

func (d *decoder) peek() byte {
	if d.i < len(d.s) {
		return d.s[d.i]
	}
	return 0
}

func (d *decoder) expect(c byte) bool {
	if d.err == nil && d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	d.fail(ReasonMalformed, "payload not canonical JSON: expected "+string(c))
	return false
}

// str reads a canonical JSON string (RFC 8785 section 3.2.2.2).
func (d *decoder) str() string {
	if !d.expect('"') {
		return ""
	}
	start := d.i
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			s := d.s[start:d.i]
			d.i++
			if !utf8.ValidString(s) {
				d.fail(ReasonMalformed, "invalid UTF-8 in string")
			}
			return s
		case c == '\\':
			return d.strEscaped(start)
		case c < 0x20:
			d.fail(ReasonMalformed, "control character in string")
			return ""
		}
		d.i++
	}
	d.fail(ReasonMalformed, "unterminated string")
	return ""
}

func (d *decoder) strEscaped(start int) string {
	buf := []byte(d.s[start:d.i])
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(buf) {
				d.fail(ReasonMalformed, "invalid UTF-8 in string")
			}
			return string(buf)
		case c < 0x20:
			d.fail(ReasonMalformed, "control character in string")
			return ""
		case c != '\\':
			buf = append(buf, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.s) {
			break
		}
		e := d.s[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 't':
			buf = append(buf, '\t')
		case 'n':
			buf = append(buf, '\n')
		case 'f':
			buf = append(buf, '\f')
		case 'r':
			buf = append(buf, '\r')
		case 'u':
			// Canonical form uses \u only for controls without a short escape, as
			// \u00 and two lowercase hex digits.
			if d.i+4 > len(d.s) || d.s[d.i:d.i+2] != "00" {
				d.fail(ReasonMalformed, "non-canonical \\u escape")
				return ""
			}
			h, l := unhex(d.s[d.i+2]), unhex(d.s[d.i+3])
			v := byte(h<<4 | l)
			if h < 0 || l < 0 || v >= 0x20 || v == '\b' || v == '\t' || v == '\n' || v == '\f' || v == '\r' {
				d.fail(ReasonMalformed, "non-canonical \\u escape")
				return ""
			}
			buf = append(buf, v)
			d.i += 4
		default:
			d.fail(ReasonMalformed, "non-canonical escape")
			return ""
		}
	}
	d.fail(ReasonMalformed, "unterminated string")
	return ""
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1 // uppercase hex is not canonical
}

// integer reads a canonical non-negative integer no larger than maxNumericDate.
func (d *decoder) integer() int64 {
	if d.err != nil {
		return 0
	}
	start := d.i
	var n int64
	for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
		n = n*10 + int64(d.s[d.i]-'0')
		d.i++
		if d.i-start > 10 {
			break
		}
	}
	switch {
	case d.i == start:
		d.fail(ReasonMalformed, "expected a non-negative integer")
	case d.s[start] == '0' && d.i-start > 1:
		d.fail(ReasonMalformed, "leading zero in integer")
	case n > maxNumericDate:
		d.fail(ReasonMalformed, "integer out of range")
	case d.i < len(d.s) && (d.s[d.i] == '.' || d.s[d.i] == 'e' || d.s[d.i] == 'E'):
		d.fail(ReasonMalformed, "NumericDate must be an integer")
	}
	return n
}

// set reads a canonical array of strings that is a sorted set of non-empty strings.
func (d *decoder) set() []string {
	if !d.expect('[') {
		return nil
	}
	var out []string
	for d.err == nil {
		s := d.str()
		if s == "" || (len(out) > 0 && out[len(out)-1] >= s) {
			d.fail(ReasonMalformed, "scope must be sorted, distinct, non-empty strings")
			return nil
		}
		out = append(out, s)
		if d.peek() == ']' {
			d.i++
			return out
		}
		d.expect(',')
	}
	return nil
}

// members iterates the members of a canonical object, calling f with each key after
// checking it is greater than the previous one; f reads the value.
func (d *decoder) members(f func(key string)) {
	if !d.expect('{') {
		return
	}
	prev := ""
	for d.err == nil {
		k := d.str()
		if d.err != nil {
			return
		}
		if prev != "" && k <= prev {
			d.fail(ReasonMalformed, "object keys not in canonical order or duplicated")
			return
		}
		prev = k
		if !d.expect(':') {
			return
		}
		f(k)
		switch d.peek() {
		case '}':
			d.i++
			return
		case ',':
			d.i++
		default:
			d.fail(ReasonMalformed, "expected , or }")
			return
		}
	}
}

// nonEmpty reads a string that must not be empty (optional claims are omitted instead).
func (d *decoder) nonEmpty(name string) string {
	s := d.str()
	if s == "" {
		d.fail(ReasonMalformed, name+" must not be empty")
	}
	return s
}

// decodeClaims parses a canonical claims payload into c.
func decodeClaims(payload string, c *Claims) *Error {
	d := decoder{s: payload}
	var have uint8
	const (
		hIss = 1 << iota
		hAud
		hJti
		hIat
		hExp
		hAct
		hBdy
		hCnf
	)
	d.members(func(k string) {
		switch k {
		case "act":
			c.Action, have = d.nonEmpty(k), have|hAct
		case "apr":
			c.Approval = d.nonEmpty(k)
		case "aud":
			c.Audience, have = d.nonEmpty(k), have|hAud
		case "bdy":
			c.BodyDigest, have = d.str(), have|hBdy
		case "cnf":
			have |= hCnf
			n := 0
			d.members(func(k string) {
				if k != "x5t#S256" {
					d.fail(ReasonMalformed, "unknown cnf member")
					return
				}
				c.CertThumbprint, n = d.str(), 1
			})
			if n == 0 {
				d.fail(ReasonMalformed, "cnf.x5t#S256 required")
			}
		case "dlg":
			c.Delegation = d.actor(0)
		case "exp":
			c.Expiry, have = d.integer(), have|hExp
		case "iat":
			c.IssuedAt, have = d.integer(), have|hIat
		case "iss":
			c.Issuer, have = d.nonEmpty(k), have|hIss
		case "jti":
			c.ID, have = d.str(), have|hJti
		case "purpose":
			c.Purpose = d.nonEmpty(k)
		case "res":
			c.Resource = d.nonEmpty(k)
		case "scope":
			c.Scope = d.set()
		case "wf":
			c.Workflow = d.nonEmpty(k)
		default:
			d.fail(ReasonMalformed, "unknown claim")
		}
	})
	if d.err == nil && d.i != len(d.s) {
		d.fail(ReasonMalformed, "trailing bytes after payload")
	}
	if d.err != nil {
		return d.err
	}
	if have != hIss|hAud|hJti|hIat|hExp|hAct|hBdy|hCnf {
		return refuse(ReasonMalformed, "missing required claim")
	}
	if err := c.checkShape(); err != nil {
		return err.(*Error)
	}
	return nil
}

// actor reads one dlg hop; every defect inside dlg is reported as delegation_invalid.
func (d *decoder) actor(depth int) *Actor {
	if depth >= maxActorNesting {
		d.fail(ReasonDelegationInvalid, "dlg nested too deep")
		return nil
	}
	a := &Actor{}
	d.members(func(k string) {
		switch k {
		case "act":
			a.Actor = d.actor(depth + 1)
		case "scope":
			a.Scope = d.set()
		case "sub":
			a.Subject = d.nonEmpty(k)
		default:
			d.fail(ReasonDelegationInvalid, "unknown dlg member")
		}
	})
	if d.err != nil && d.err.Reason == ReasonMalformed {
		d.err.Reason = ReasonDelegationInvalid
	}
	if d.err == nil && (a.Subject == "" || a.Scope == nil) {
		d.fail(ReasonDelegationInvalid, "dlg hop needs sub and scope")
	}
	return a
}
