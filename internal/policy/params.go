package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"

	"github.com/warden-a2a/warden/internal/jcs"
)

// Business parameters (docs/policy.md "Business parameters") are what a call says about
// itself that policy reads: an amount, a currency, the state of the resource, the
// sensitivity of the data. Each action declares its own in the schema, as the
// attributes of its Cedar context type other than the ones the gate computes
// (computedContext); the gate reads each from the call's A2A message metadata under
// "warden.<name>" and refuses the call (invalid_request, naming the parameter) when one
// is of the wrong JSON type, out of range, not one of its values, or missing and
// required. So a policy can read only what its action declares (Cedar's validator
// checks each policy against each action's context type), and nothing it reads is a
// silent zero.
//
//	type PaymentContext = {
//	  ...,
//	  @min("0") amount: Long,                       // required, a whole number >= 0
//	  @values("EUR USD GBP CHF") currency: String,  // required, one of these
//	  @default("open") @values("open paid") resource_status: String, // optional, defaulted
//	  reference?: String,                           // optional; absent stays absent (use `has`)
//	};

// computedContext are the context attributes the gate computes itself; every other
// attribute of an action's context type is a business parameter.
var computedContext = map[string]bool{"purpose": true, "time": true, "attestation": true, "approvals": true, "trust": true}

// MetadataPrefix is the prefix of a business parameter's key in the message metadata.
const MetadataPrefix = "warden."

// maxExact is the largest magnitude a Long parameter may have: 2^53 - 1, the largest
// integer every JSON reader that uses doubles (RFC 8259 section 6, I-JSON RFC 7493
// section 2.2) reads exactly, so the agent behind the gate reads the value decided on.
const maxExact = 1<<53 - 1

// maxParamString bounds a String parameter's length in bytes.
const maxParamString = 1024

// ParamKind is the JSON type of a parameter.
type ParamKind string

const (
	ParamLong   ParamKind = "Long"   // a JSON integer, no fraction or exponent, |n| <= 2^53-1
	ParamString ParamKind = "String" // a JSON string
)

// Param is one business parameter an action declares.
type Param struct {
	Name     string    // Cedar attribute; metadata key MetadataPrefix + Name
	Kind     ParamKind // Long or String
	Optional bool      // declared "name?": may be absent, and then is absent in the context
	// Default is used when the call does not carry the parameter (@default); with it the
	// parameter is optional on the wire but always present in the context.
	Default any      // int64 or string; nil when none
	Values  []string // String (@values): the allowed values, matched ignoring case
	Min     int64    // Long (@min), default -(2^53-1)
	Max     int64    // Long (@max), default 2^53-1
}

// Required reports whether a call must carry the parameter.
func (p Param) Required() bool { return !p.Optional && p.Default == nil }

// ParamError is the refusal of a call's parameters: which one and what is wrong.
type ParamError struct {
	Param   string // metadata key, e.g. "warden.amount"; "metadata" for the object itself
	Problem string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Problem }

// ParseParams reads the parameters ps from a call's metadata (the object of the one
// strict parse of its body; of kind jcs.Invalid when the call has none). It returns the
// values by name, int64 or string, defaults applied, optional ones absent when absent;
// or a *ParamError. Keys of meta that are not declared parameters are ignored: policy
// cannot read them.
func ParseParams(ps []Param, meta jcs.Value) (map[string]any, error) {
	switch meta.Kind() {
	case jcs.Object, jcs.Invalid:
	default:
		return nil, &ParamError{"metadata", "not a JSON object"}
	}
	out := make(map[string]any, len(ps))
	for i := range ps {
		p := &ps[i]
		key := MetadataPrefix + p.Name
		v := meta.Get(key)
		if v.Kind() == jcs.Invalid {
			switch {
			case p.Default != nil:
				out[p.Name] = p.Default
			case !p.Optional:
				return nil, &ParamError{key, "required and missing"}
			}
			continue
		}
		val, problem := p.parse(v)
		if problem != "" {
			return nil, &ParamError{key, problem}
		}
		out[p.Name] = val
	}
	return out, nil
}

// parse checks one value; it returns the value decided on or what is wrong with it.
func (p *Param) parse(v jcs.Value) (any, string) {
	switch p.Kind {
	case ParamLong:
		_, lit, ok := v.Number()
		if !ok {
			return nil, "must be a JSON integer, not " + kindName(v)
		}
		n, problem := exactInt(lit)
		if problem != "" {
			return nil, problem
		}
		if n < p.Min || n > p.Max {
			return nil, fmt.Sprintf("%d is outside [%d, %d]", n, p.Min, p.Max)
		}
		return n, ""
	default:
		s, ok := v.Str()
		if !ok {
			return nil, "must be a JSON string, not " + kindName(v)
		}
		if len(s) > maxParamString {
			return nil, fmt.Sprintf("longer than %d bytes", maxParamString)
		}
		if len(p.Values) == 0 {
			return s, ""
		}
		for _, w := range p.Values {
			if strings.EqualFold(s, w) {
				return w, "" // the declared spelling is what policy sees
			}
		}
		return nil, fmt.Sprintf("%q is not one of %s", s, strings.Join(p.Values, ", "))
	}
}

// exactInt reads a JSON number literal that must be an integer of magnitude at most
// 2^53-1, written without fraction or exponent: "60000", "-5"; not "6e4", "60000.0",
// "1e300", "9007199254740993".
func exactInt(lit string) (int64, string) {
	digits := strings.TrimPrefix(lit, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, "must be a whole number written without fraction or exponent, not " + lit
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	if err != nil || n > maxExact || n < -maxExact {
		return 0, "out of range: more than 2^53-1 in magnitude (" + lit + ")"
	}
	return n, ""
}

func kindName(v jcs.Value) string {
	switch v.Kind() {
	case jcs.Null:
		return "null"
	case jcs.Bool:
		return "a boolean"
	case jcs.Number:
		return "a number"
	case jcs.String:
		return "a string"
	case jcs.Array:
		return "an array"
	case jcs.Object:
		return "an object"
	}
	return "nothing"
}

// declaredParams reads the business parameters of one action's context type; the
// problems name what a bundle author got wrong.
func declaredParams(action string, ctx resolved.RecordType) ([]Param, []string) {
	var ps []Param
	var probs []string
	bad := func(name, format string, args ...any) {
		probs = append(probs, fmt.Sprintf("action %q, context attribute %q: %s", action, name, fmt.Sprintf(format, args...)))
	}
	for k, at := range ctx {
		name := string(k)
		if computedContext[name] {
			continue
		}
		p := Param{Name: name, Optional: at.Optional, Min: -maxExact, Max: maxExact}
		switch at.Type.(type) {
		case resolved.LongType:
			p.Kind = ParamLong
		case resolved.StringType:
			p.Kind = ParamString
		default:
			bad(name, "a business parameter must be Long or String")
			continue
		}
		ann := map[string]string{}
		for ak, av := range at.Annotations {
			ann[string(ak)] = string(av)
		}
		for ak := range ann {
			switch ak {
			case "default", "values", "min", "max", "doc":
			default:
				bad(name, "unknown annotation @%s (default, values, min, max)", ak)
			}
		}
		if v, ok := ann["values"]; ok {
			if p.Kind != ParamString {
				bad(name, "@values applies to String parameters")
			}
			p.Values = strings.Fields(v)
			if len(p.Values) == 0 {
				bad(name, "@values lists no value")
			}
		}
		for ak, dst := range map[string]*int64{"min": &p.Min, "max": &p.Max} {
			v, ok := ann[ak]
			if !ok {
				continue
			}
			if p.Kind != ParamLong {
				bad(name, "@%s applies to Long parameters", ak)
				continue
			}
			n, problem := exactInt(v)
			if problem != "" {
				bad(name, "@%s: %s", ak, problem)
				continue
			}
			*dst = n
		}
		if p.Min > p.Max {
			bad(name, "@min is above @max")
		}
		if v, ok := ann["default"]; ok {
			if p.Optional {
				bad(name, `an optional attribute ("?") has no @default: absent stays absent`)
			}
			var dv any
			var problem string
			if p.Kind == ParamLong {
				dv, problem = p.parse(longValue(v))
			} else {
				dv, problem = p.parse(stringValue(v))
			}
			if problem != "" {
				bad(name, "@default: %s", problem)
			}
			p.Default = dv
		}
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b Param) int { return strings.Compare(a.Name, b.Name) })
	return ps, probs
}

// longValue and stringValue turn an annotation's text into the JSON value a call would
// carry, so that a @default is checked exactly as a call's value is.
func longValue(s string) jcs.Value {
	v, err := jcs.Parse([]byte(s))
	if err != nil || v.Kind() != jcs.Number {
		return jcs.Value{}
	}
	return v
}

func stringValue(s string) jcs.Value {
	b, _ := json.Marshal(s)
	v, _ := jcs.Parse(b)
	return v
}

// paramRecord adds the parsed parameters to a Cedar context record.
func paramRecord(rm types.RecordMap, params map[string]any) {
	for k, v := range params {
		switch v := v.(type) {
		case int64:
			rm[types.String(k)] = types.Long(v)
		case string:
			rm[types.String(k)] = types.String(v)
		}
	}
}
