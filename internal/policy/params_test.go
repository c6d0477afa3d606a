package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/jcs"
	"github.com/warden-a2a/warden/internal/policy"
)

func actionInfo(t testing.TB, e *policy.Engine, name string) policy.ActionInfo {
	t.Helper()
	for _, a := range e.Actions() {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no action %s", name)
	return policy.ActionInfo{}
}

func meta(t testing.TB, s string) jcs.Value {
	t.Helper()
	v, err := jcs.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// paramCases are calls of payment.release in the default bundle (amount and currency
// required, resource_status defaulted, data_sensitivity defaulted), with what the
// gate must decide on or which parameter it must name. The attacks of issue 13 item 2
// are among them: before, each yielded amount 0 and released a payment above the
// two-approver threshold with no approval.
var paramCases = []struct {
	name, meta string
	want       map[string]any // nil: refused
	param      string         // the parameter named in the refusal
}{
	{"valid", `{"warden.amount":60000,"warden.currency":"EUR"}`,
		map[string]any{"amount": int64(60000), "currency": "EUR", "resource_status": "open", "data_sensitivity": "internal"}, ""},
	{"enums ignore case, policy sees the declared spelling", `{"warden.amount":0,"warden.currency":"eur","warden.resource_status":"APPROVED","warden.data_sensitivity":"Restricted"}`,
		map[string]any{"amount": int64(0), "currency": "EUR", "resource_status": "approved", "data_sensitivity": "restricted"}, ""},
	{"largest exact integer", `{"warden.amount":9007199254740991,"warden.currency":"USD"}`,
		map[string]any{"amount": int64(9007199254740991), "currency": "USD", "resource_status": "open", "data_sensitivity": "internal"}, ""},
	{"other metadata is ignored", `{"warden.amount":1,"warden.currency":"EUR","warden.action":"payment.release","warden.colour":"red"}`,
		map[string]any{"amount": int64(1), "currency": "EUR", "resource_status": "open", "data_sensitivity": "internal"}, ""},
	{"amount as a string", `{"warden.amount":"60000","warden.currency":"EUR"}`, nil, "warden.amount"},
	{"amount 1e300", `{"warden.amount":1e300,"warden.currency":"EUR"}`, nil, "warden.amount"},
	{"amount 2^53+1, which a double rounds", `{"warden.amount":9007199254740993,"warden.currency":"EUR"}`, nil, "warden.amount"},
	{"amount 2^53", `{"warden.amount":9007199254740992,"warden.currency":"EUR"}`, nil, "warden.amount"},
	{"amount beyond int64", `{"warden.amount":99999999999999999999,"warden.currency":"EUR"}`, nil, "warden.amount"},
	{"negative amount", `{"warden.amount":-60000,"warden.currency":"EUR"}`, nil, "warden.amount"},
	{"amount missing", `{"warden.currency":"EUR"}`, nil, "warden.amount"},
	{"amount with a fraction", `{"warden.amount":60000.5,"warden.currency":"EUR"}`, nil, "warden.amount"},
	{"amount written 60000.0", `{"warden.amount":60000.0,"warden.currency":"EUR"}`, nil, "warden.amount"},
	{"amount written 6e4", `{"warden.amount":6e4,"warden.currency":"EUR"}`, nil, "warden.amount"},
	{"amount null", `{"warden.amount":null,"warden.currency":"EUR"}`, nil, "warden.amount"},
	{"amount true", `{"warden.amount":true,"warden.currency":"EUR"}`, nil, "warden.amount"},
	{"amount as an object", `{"warden.amount":{"value":60000},"warden.currency":"EUR"}`, nil, "warden.amount"},
	{"unknown currency", `{"warden.amount":60000,"warden.currency":"XXX"}`, nil, "warden.currency"},
	{"currency missing", `{"warden.amount":60000}`, nil, "warden.currency"},
	{"currency as a number", `{"warden.amount":60000,"warden.currency":978}`, nil, "warden.currency"},
	{"status not in the enum", `{"warden.amount":1,"warden.currency":"EUR","warden.resource_status":"reopened"}`, nil, "warden.resource_status"},
	{"sensitivity not in the enum", `{"warden.amount":1,"warden.currency":"EUR","warden.data_sensitivity":"secret"}`, nil, "warden.data_sensitivity"},
	{"no metadata at all", ``, nil, "warden.amount"},
	{"metadata not an object", `["warden.amount",60000]`, nil, "metadata"},
}

// TestParseParams: the default bundle's payment.release against each case.
func TestParseParams(t *testing.T) {
	e := load(t, defaultDir)
	ps := actionInfo(t, e, "payment.release").Params
	for _, tc := range paramCases {
		t.Run(tc.name, func(t *testing.T) {
			var m jcs.Value
			if tc.meta != "" {
				m = meta(t, tc.meta)
			}
			got, err := policy.ParseParams(ps, m)
			if tc.want == nil {
				var pe *policy.ParamError
				if !errors.As(err, &pe) || pe.Param != tc.param {
					t.Fatalf("got %v, %v; want a refusal naming %s", got, err, tc.param)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
		})
	}
}

// TestDeclaredParams: what the default bundle declares per action; reads declare only
// the sensitivity.
func TestDeclaredParams(t *testing.T) {
	e := load(t, defaultDir)
	summary := func(a policy.ActionInfo) string {
		var s []string
		for _, p := range a.Params {
			x := p.Name + ":" + string(p.Kind)
			if p.Required() {
				x += "!"
			}
			s = append(s, x)
		}
		return strings.Join(s, " ")
	}
	for action, want := range map[string]string{
		"payment.release":       "amount:Long! currency:String! data_sensitivity:String resource_status:String",
		"purchase_order.create": "amount:Long! currency:String! data_sensitivity:String resource_status:String",
		"purchase_order.read":   "data_sensitivity:String resource_status:String",
		"shipment.status":       "data_sensitivity:String",
	} {
		if got := summary(actionInfo(t, e, action)); got != want {
			t.Errorf("%s: %s, want %s", action, got, want)
		}
	}
}

// TestParamDeclarationsChecked: a bundle that declares a parameter the gate could not
// read strictly is refused at load.
func TestParamDeclarationsChecked(t *testing.T) {
	for name, decl := range map[string]string{
		"set type":                 `tags: Set<String>`,
		"values on a Long":         `@values("1 2") qty: Long`,
		"min on a String":          `@min("0") ref: String`,
		"min above max":            `@min("5") @max("1") qty: Long`,
		"inexact bound":            `@max("9007199254740993") qty: Long`,
		"default outside values":   `@default("x") @values("a b") ref: String`,
		"default not an integer":   `@default("1.5") qty: Long`,
		"default on optional":      `@default("a") ref?: String`,
		"unknown annotation":       `@required("true") ref: String`,
		"values listing no value":  `@values(" ") ref: String`,
		"default outside min, max": `@default("-1") @min("0") qty: Long`,
	} {
		t.Run(name, func(t *testing.T) {
			schema := strings.Replace(readDefault(t, "schema.cedarschema"), "type CallContext = {", "type CallContext = {\n  "+decl+",", 1)
			dir := copyBundle(t, map[string]string{"schema.cedarschema": schema})
			if _, err := policy.Load(dir, policy.Options{}); err == nil {
				t.Fatalf("bundle with %q loaded", decl)
			}
		})
	}
}

// TestOptionalParamAbsent: an optional parameter the call did not carry is absent from
// the context (`has` is false), never a zero.
func TestOptionalParamAbsent(t *testing.T) {
	schema := strings.Replace(readDefault(t, "schema.cedarschema"), "type CallContext = {", "type CallContext = {\n  @min(\"0\") quantity?: Long,", 1)
	dir := copyBundle(t, map[string]string{"schema.cedarschema": schema, "+guards.cedar": `
@id("no-bulk-forecast")
@reason("a forecast must say its quantity")
forbid (principal is Agent, action == Action::"forecast.publish", resource)
unless { context has quantity && context.quantity < 1000 };`})
	e := load(t, dir)
	ps := actionInfo(t, e, "forecast.publish").Params
	for m, allow := range map[string]bool{`{}`: false, `{"warden.quantity":10}`: true, `{"warden.quantity":5000}`: false} {
		params, err := policy.ParseParams(ps, meta(t, m))
		if err != nil {
			t.Fatal(err)
		}
		req := baseRequest("procurement", "forecast.publish", policy.Resource{Type: "Forecast", ID: "FC-1", Status: "draft"})
		req.Context.Params = params
		req.Context.Attestation = policy.Attestation{Tier: "affirming", AgeSeconds: 5}
		if d := e.Decide(req, now); d.Allow != allow {
			t.Errorf("%s: allow=%v (%s %s), want %v", m, d.Allow, d.Code, d.Reason, allow)
		}
	}
}

// FuzzParseParams: whatever the parser accepts is of the declared type and within the
// declared range or values; it never panics. Seeds: every case of paramCases.
func FuzzParseParams(f *testing.F) {
	for _, tc := range paramCases {
		f.Add([]byte(tc.meta))
	}
	e := load(f, defaultDir)
	ps := actionInfo(f, e, "payment.release").Params
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := jcs.ParseWith(in, jcs.Options{FoldDuplicates: true})
		if err != nil {
			return
		}
		got, err := policy.ParseParams(ps, m)
		if err != nil {
			var pe *policy.ParamError
			if !errors.As(err, &pe) || pe.Param == "" {
				t.Fatalf("error without a parameter: %v", err)
			}
			return
		}
		for _, p := range ps {
			v, ok := got[p.Name]
			if !ok {
				if p.Required() {
					t.Fatalf("required %s absent: %v", p.Name, got)
				}
				continue
			}
			switch p.Kind {
			case policy.ParamLong:
				n, ok := v.(int64)
				if !ok || n < p.Min || n > p.Max || n > 1<<53-1 || n < -(1<<53-1) {
					t.Fatalf("%s = %#v", p.Name, v)
				}
			case policy.ParamString:
				s, ok := v.(string)
				if !ok || (len(p.Values) > 0 && !contains(p.Values, s)) {
					t.Fatalf("%s = %#v", p.Name, v)
				}
			}
		}
	})
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func readDefault(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(defaultDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
