// Package jcs implements the JSON Canonicalization Scheme of RFC 8785: a strict JSON
// reader that refuses what RFC 8785 section 3.1 (I-JSON, RFC 7493) forbids — duplicate
// object keys, invalid UTF-8, lone surrogates, numbers outside IEEE 754 double range —
// and a writer that emits the canonical form: no whitespace, object members sorted by
// their UTF-16 code units (section 3.2.3), strings with the minimal escaping of section
// 3.2.2.2 and numbers in the ECMAScript Number.prototype.toString form (section 3.2.2.3).
//
// The standard library decoder silently keeps the last of two duplicate keys, which
// lets two parsers read one document differently; this reader refuses the document.
package jcs

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of arrays and objects the reader accepts.
const MaxDepth = 64

// Errors returned by Transform, wrapped with the byte offset where they were found.
var (
	ErrSyntax       = errors.New("jcs: invalid JSON")
	ErrDuplicateKey = errors.New("jcs: duplicate object key")
	ErrInvalidUTF8  = errors.New("jcs: invalid UTF-8 or lone surrogate")
	ErrNumber       = errors.New("jcs: number not representable as IEEE 754 double")
	ErrTooDeep      = errors.New("jcs: nesting too deep")
)

// Transform parses one JSON value from in (surrounding whitespace allowed) and returns
// its RFC 8785 canonical form.
func Transform(in []byte) ([]byte, error) {
	p := parser{in: in}
	p.skipWS()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipWS()
	if p.pos != len(in) {
		return nil, p.errf(ErrSyntax, "trailing data")
	}
	return appendValue(make([]byte, 0, len(in)), v), nil
}

// Valid reports whether in is one strict JSON value (no duplicate keys, valid UTF-8,
// finite numbers).
func Valid(in []byte) bool {
	_, err := Transform(in)
	return err == nil
}

// Options of ParseWith.
type Options struct {
	// FoldDuplicates also refuses two keys of one object that are equal ignoring case
	// (strings.EqualFold, the folding encoding/json uses to match a key to a struct
	// field). A reader that matches keys case-insensitively (Go's encoding/json) and
	// one that matches them exactly then cannot read different members of one
	// document. RFC 8785 itself compares keys exactly; Transform does not fold.
	FoldDuplicates bool
}

// Parse reads one strict JSON value from in (surrounding whitespace allowed): the
// refusals of Transform (duplicate keys, invalid UTF-8, lone surrogates, numbers out of
// double range, nesting over MaxDepth, trailing data), without canonicalizing.
func Parse(in []byte) (Value, error) { return ParseWith(in, Options{}) }

// ParseWith is Parse with options.
func ParseWith(in []byte, o Options) (Value, error) {
	p := parser{in: in, fold: o.FoldDuplicates}
	p.skipWS()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.skipWS()
	if p.pos != len(in) {
		return Value{}, p.errf(ErrSyntax, "trailing data")
	}
	return v, nil
}

// Kind of a JSON value.
type Kind uint8

// The kinds of JSON values; Invalid is the zero Value (an absent member).
const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

// Kind says what v is.
func (v Value) Kind() Kind {
	switch v.kind {
	case kNull:
		return Null
	case kTrue, kFalse:
		return Bool
	case kNumber:
		return Number
	case kString:
		return String
	case kArray:
		return Array
	case kObject:
		return Object
	}
	return Invalid
}

// Str returns the value of a string.
func (v Value) Str() (string, bool) { return v.str, v.kind == kString }

// Number returns a number as a double and its literal as written ("1e300",
// "9007199254740993"), so that a caller can refuse what a double cannot hold exactly.
func (v Value) Number() (f float64, literal string, ok bool) {
	return v.num, v.lit, v.kind == kNumber
}

// Bool returns the value of true or false.
func (v Value) Bool() (b, ok bool) { return v.kind == kTrue, v.kind == kTrue || v.kind == kFalse }

// Len is the number of elements of an array or members of an object.
func (v Value) Len() int { return len(v.arr) + len(v.keys) }

// Index returns element i of an array.
func (v Value) Index(i int) Value {
	if v.kind != kArray || i < 0 || i >= len(v.arr) {
		return Value{}
	}
	return v.arr[i]
}

// Member i of an object, in document order.
func (v Value) Member(i int) (string, Value) {
	if v.kind != kObject || i < 0 || i >= len(v.keys) {
		return "", Value{}
	}
	return v.keys[i], v.vals[i]
}

// Get returns the member of an object named exactly key (the zero Value, of kind
// Invalid, when there is none or v is no object).
func (v Value) Get(key string) Value {
	for i, k := range v.keys {
		if k == key {
			return v.vals[i]
		}
	}
	return Value{}
}

// GetFold returns the member whose key equals key ignoring case, as encoding/json
// matches a struct field. Parsed with FoldDuplicates there is at most one.
func (v Value) GetFold(key string) Value {
	for i, k := range v.keys {
		if k == key || strings.EqualFold(k, key) {
			return v.vals[i]
		}
	}
	return Value{}
}

// kind of a parsed value.
type kind uint8

const (
	kInvalid kind = iota // the zero Value: no value
	kNull
	kTrue
	kFalse
	kNumber
	kString
	kArray
	kObject
)

// Value is one JSON value as Parse read it. Its accessors never fail: asking a value
// for a member it does not have answers "absent".
type Value struct {
	kind kind
	num  float64
	lit  string   // number: the literal as written (RFC 8259 section 6)
	str  string   // string value
	arr  []Value  // array elements
	keys []string // object keys, in input order
	vals []Value  // object values, parallel to keys
}

type parser struct {
	in   []byte
	pos  int
	fold bool // also refuse keys equal under encoding/json's case folding
}

func (p *parser) errf(base error, format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", base, p.pos, fmt.Sprintf(format, args...))
}

func (p *parser) skipWS() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (Value, error) {
	if p.pos >= len(p.in) {
		return Value{}, p.errf(ErrSyntax, "unexpected end")
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.string()
		return Value{kind: kString, str: s}, err
	case c == 't':
		return Value{kind: kTrue}, p.literal("true")
	case c == 'f':
		return Value{kind: kFalse}, p.literal("false")
	case c == 'n':
		return Value{kind: kNull}, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.pos
		f, err := p.number()
		return Value{kind: kNumber, num: f, lit: string(p.in[start:p.pos])}, err
	default:
		return Value{}, p.errf(ErrSyntax, "unexpected byte %q", c)
	}
}

func (p *parser) literal(lit string) error {
	if len(p.in)-p.pos < len(lit) || string(p.in[p.pos:p.pos+len(lit)]) != lit {
		return p.errf(ErrSyntax, "bad literal")
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) object(depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, p.errf(ErrTooDeep, "depth %d", depth)
	}
	p.pos++ // '{'
	v := Value{kind: kObject}
	p.skipWS()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	var seen map[string]struct{} // from the 17th key on; below, a linear scan
	for {
		p.skipWS()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return Value{}, p.errf(ErrSyntax, "expected object key")
		}
		k, err := p.string()
		if err != nil {
			return Value{}, err
		}
		if p.duplicate(&v, &seen, k) {
			return Value{}, p.errf(ErrDuplicateKey, "%q", k)
		}
		p.skipWS()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return Value{}, p.errf(ErrSyntax, "expected ':'")
		}
		p.pos++
		p.skipWS()
		m, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		v.keys = append(v.keys, k)
		v.vals = append(v.vals, m)
		p.skipWS()
		if p.pos >= len(p.in) {
			return Value{}, p.errf(ErrSyntax, "unterminated object")
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return Value{}, p.errf(ErrSyntax, "expected ',' or '}'")
		}
	}
}

// duplicate reports whether k repeats a key of v already read (exactly, or with fold set
// under foldKey), and records it.
func (p *parser) duplicate(v *Value, seen *map[string]struct{}, k string) bool {
	const linear = 16
	key := k
	if p.fold {
		key = foldKey(k)
	}
	if len(v.keys) < linear {
		for _, o := range v.keys {
			if o == k || (p.fold && strings.EqualFold(o, k)) {
				return true
			}
		}
		if len(v.keys) == linear-1 { // the next key goes to the map: fill it
			*seen = make(map[string]struct{}, 2*linear)
			for _, o := range v.keys {
				if p.fold {
					o = foldKey(o)
				}
				(*seen)[o] = struct{}{}
			}
			(*seen)[key] = struct{}{}
		}
		return false
	}
	if _, dup := (*seen)[key]; dup {
		return true
	}
	(*seen)[key] = struct{}{}
	return false
}

// foldKey maps k so that foldKey(a) == foldKey(b) exactly when strings.EqualFold(a, b)
// for the keys encoding/json compares: upper case of lower case, rune by rune, which is
// how encoding/json matches a key to a struct field (its foldName).
func foldKey(k string) string {
	return strings.Map(func(r rune) rune { return unicode.ToUpper(unicode.ToLower(r)) }, k)
}

func (p *parser) array(depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, p.errf(ErrTooDeep, "depth %d", depth)
	}
	p.pos++ // '['
	v := Value{kind: kArray}
	p.skipWS()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		p.skipWS()
		e, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		v.arr = append(v.arr, e)
		p.skipWS()
		if p.pos >= len(p.in) {
			return Value{}, p.errf(ErrSyntax, "unterminated array")
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return Value{}, p.errf(ErrSyntax, "expected ',' or ']'")
		}
	}
}

// number reads an RFC 8259 section 6 number and converts it to a double; values that
// overflow to ±Inf are refused (RFC 8785 section 3.2.2.3 allows only finite numbers).
func (p *parser) number() (float64, error) {
	start := p.pos
	if p.in[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.pos < len(p.in) && p.in[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return 0, p.errf(ErrSyntax, "bad number")
	}
	if p.pos < len(p.in) && p.in[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return 0, p.errf(ErrSyntax, "bad fraction")
		}
	}
	if p.pos < len(p.in) && (p.in[p.pos] == 'e' || p.in[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.in) && (p.in[p.pos] == '+' || p.in[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return 0, p.errf(ErrSyntax, "bad exponent")
		}
	}
	f, err := strconv.ParseFloat(string(p.in[start:p.pos]), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, p.errf(ErrNumber, "%s", p.in[start:p.pos])
	}
	return f, nil
}

// string reads a JSON string, decoding escapes; invalid UTF-8 and unpaired surrogate
// escapes are refused (I-JSON, RFC 7493 section 2.1).
func (p *parser) string() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if c == '"' {
			s := p.in[start:p.pos]
			if !utf8.Valid(s) {
				return "", p.errf(ErrInvalidUTF8, "in string")
			}
			p.pos++
			return string(s), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	buf := append([]byte(nil), p.in[start:p.pos]...)
	for {
		if p.pos >= len(p.in) {
			return "", p.errf(ErrSyntax, "unterminated string")
		}
		c := p.in[p.pos]
		switch {
		case c == '"':
			if !utf8.Valid(buf) {
				return "", p.errf(ErrInvalidUTF8, "in string")
			}
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", p.errf(ErrSyntax, "control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		p.pos++ // backslash
		if p.pos >= len(p.in) {
			return "", p.errf(ErrSyntax, "unterminated escape")
		}
		e := p.in[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errf(ErrSyntax, "bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 || p.pos+6 > len(p.in) || p.in[p.pos] != '\\' || p.in[p.pos+1] != 'u' {
					return "", p.errf(ErrInvalidUTF8, "lone surrogate")
				}
				p.pos += 2
				r2, ok := p.hex4()
				if !ok || r2 < 0xdc00 || r2 > 0xdfff {
					return "", p.errf(ErrInvalidUTF8, "lone surrogate")
				}
				r = utf16.DecodeRune(r, r2)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errf(ErrSyntax, "bad escape \\%c", e)
		}
	}
}

func (p *parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.in) {
		return 0, false
	}
	var r rune
	for _, c := range p.in[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

func appendValue(dst []byte, v Value) []byte {
	switch v.kind {
	case kNull:
		return append(dst, "null"...)
	case kTrue:
		return append(dst, "true"...)
	case kFalse:
		return append(dst, "false"...)
	case kNumber:
		return AppendNumber(dst, v.num)
	case kString:
		return AppendString(dst, v.str)
	case kArray:
		dst = append(dst, '[')
		for i, e := range v.arr {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, e)
		}
		return append(dst, ']')
	default:
		idx := make([]int, len(v.keys))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return CompareKeys(v.keys[a], v.keys[b]) })
		dst = append(dst, '{')
		for n, i := range idx {
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, v.keys[i])
			dst = append(dst, ':')
			dst = appendValue(dst, v.vals[i])
		}
		return append(dst, '}')
	}
}

// CompareKeys orders object keys as RFC 8785 section 3.2.3 requires: by their UTF-16
// code units, compared as unsigned integers. It returns -1, 0 or +1.
func CompareKeys(a, b string) int {
	// For runes below U+10000 UTF-16 and code point order agree, and UTF-8 byte order
	// is code point order; only supplementary characters (surrogate pairs, 0xD800..)
	// sort before U+E000..U+FFFF in UTF-16. Compare rune by rune.
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			return cmpUnit(ra, rb)
		}
		a, b = a[na:], b[nb:]
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	default:
		return 1
	}
}

// cmpUnit compares the first UTF-16 code unit of two different runes (and, when
// equal, the second).
func cmpUnit(a, b rune) int {
	ua, ub := unit(a), unit(b)
	if ua != ub {
		if ua < ub {
			return -1
		}
		return 1
	}
	if a < b {
		return -1
	}
	return 1
}

func unit(r rune) rune {
	if r >= 0x10000 {
		r1, _ := utf16.EncodeRune(r)
		return r1
	}
	return r
}

// AppendString appends s as an RFC 8785 section 3.2.2.2 JSON string: '"' and '\\'
// escaped, \b \t \n \f \r in their short form, other controls below U+0020 as \u00xx
// with lowercase hex, everything else (including '/' and non-ASCII) literally.
// s must be valid UTF-8.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendNumber appends f in the ECMAScript Number.prototype.toString form that RFC 8785
// section 3.2.2.3 prescribes: the shortest digits that round-trip; plain notation for
// decimal exponents in [-6, 21), exponential ("1e+21", "1.5e-7") outside; -0 as "0".
// f must be finite.
func AppendNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	// Shortest round-trip digits and the exponent of the first digit.
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64)
	i := len(e) - 1
	for e[i] != 'e' {
		i--
	}
	exp, _ := strconv.Atoi(string(e[i+1:]))
	if exp >= -6 && exp < 21 { // ECMAScript: -6 < n <= 21 with n = exp+1
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	// Exponential: mantissa as Go prints it, exponent without leading zeros.
	dst = append(dst, e[:i]...)
	dst = append(dst, 'e')
	if exp < 0 {
		dst = append(dst, '-')
		exp = -exp
	} else {
		dst = append(dst, '+')
	}
	return strconv.AppendInt(dst, int64(exp), 10)
}
