package jcs_test

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/warden-a2a/warden/internal/jcs"
)

// RFC 8785 section 3.2.2 example and section 3.2.3 sorting example.
func TestTransformRFC8785Examples(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{
			name: "rfc8785-3.2.2-serialization",
			in: `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
			want: `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		},
		{
			name: "rfc8785-3.2.3-sorting",
			in: `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`,
			want: "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
		{name: "nested-sorted", in: `{"b":{"z":1,"a":[{"y":2,"x":3}]},"a":"x"}`, want: `{"a":"x","b":{"a":[{"x":3,"y":2}],"z":1}}`},
		{name: "empty-containers", in: ` { "a" : [ ] , "b" : { } } `, want: `{"a":[],"b":{}}`},
		{name: "control-escapes", in: `"\u0001\b\f\t\u001f"`, want: `"\u0001\b\f\t\u001f"`},
		{name: "solidus-and-u2028-literal", in: `"\/\u2028"`, want: "\"/\u2028\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := jcs.Transform([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
func TestAppendNumberRFC8785AppendixB(t *testing.T) {
	for _, tc := range []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	} {
		f := math.Float64frombits(tc.bits)
		if got := string(jcs.AppendNumber(nil, f)); got != tc.want {
			t.Errorf("%#016x: got %s, want %s", tc.bits, got, tc.want)
		}
	}
}

func TestTransformRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"duplicate-key-top", `{"a":1,"a":2}`, jcs.ErrDuplicateKey},
		{"duplicate-key-nested", `{"x":{"a":1,"b":2,"a":1}}`, jcs.ErrDuplicateKey},
		{"duplicate-key-via-escape", `{"a":1,"\u0061":2}`, jcs.ErrDuplicateKey},
		{"duplicate-key-in-array", `[{"k":1,"k":1}]`, jcs.ErrDuplicateKey},
		{"lone-high-surrogate", `"\ud83d"`, jcs.ErrInvalidUTF8},
		{"lone-low-surrogate", `"\ude00"`, jcs.ErrInvalidUTF8},
		{"invalid-utf8", "\"\xff\"", jcs.ErrInvalidUTF8},
		{"number-overflow", `1e400`, jcs.ErrNumber},
		{"nan-literal", `NaN`, jcs.ErrSyntax},
		{"leading-zero", `01`, jcs.ErrSyntax},
		{"trailing-comma", `[1,]`, jcs.ErrSyntax},
		{"trailing-data", `{} {}`, jcs.ErrSyntax},
		{"raw-control-char", "\"a\x01\"", jcs.ErrSyntax},
		{"bad-escape", `"\x"`, jcs.ErrSyntax},
		{"empty", ``, jcs.ErrSyntax},
		{"too-deep", string(make([]byte, 0)) + repeat("[", 65) + repeat("]", 65), jcs.ErrTooDeep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := jcs.Transform([]byte(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

// FuzzTransform checks that whatever the strict reader accepts, encoding/json accepts
// too, and that canonicalization is idempotent.
func FuzzTransform(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":[true,false,null],"c":"\u20ac"}`, `{"a":1,"a":2}`, `[1e30,4.50,-0]`,
		`"\ud83d\ude00"`, `{"\u0080":1,"\r":2}`, `123456789012345678901234567890`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := jcs.Transform(in)
		if err != nil {
			return
		}
		if !json.Valid(in) {
			t.Fatalf("accepted what encoding/json refuses: %q", in)
		}
		again, err := jcs.Transform(out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
	})
}

// TestParseFoldDuplicates: with FoldDuplicates, keys that encoding/json would map onto
// one struct field are refused at any depth, past the linear-scan size too; exact
// duplicates are refused either way.
func TestParseFoldDuplicates(t *testing.T) {
	many := ""
	for i := range 20 {
		many += `"k` + strconv.Itoa(i) + `":1,`
	}
	for _, tc := range []struct {
		name, in      string
		exact, folded bool // refused by Parse, by ParseWith(FoldDuplicates)
	}{
		{"distinct", `{"method":1,"params":2}`, false, false},
		{"exact-duplicate", `{"method":1,"method":2}`, true, true},
		{"case-duplicate", `{"method":"SendMessage","Method":"CreateTaskPushNotificationConfig"}`, false, true},
		{"case-duplicate-nested", `{"params":{"message":{"metadata":{"warden.amount":1,"WARDEN.AMOUNT":2}}}}`, false, true},
		{"long-s-folds-to-s", `{"message":1,"me\u017f\u017fage":2}`, false, true},
		{"kelvin-folds-to-k", `{"k":1,"\u212a":2}`, false, true},
		{"case-duplicate-after-16-keys", `{` + many + `"Method":1,"method":2}`, false, true},
		{"exact-duplicate-after-16-keys", `{` + many + `"k3":1}`, true, true},
		{"case-duplicate-in-array", `[{"a":1},{"id":1,"ID":2}]`, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := jcs.Parse([]byte(tc.in))
			if (err != nil) != tc.exact || (err != nil && !errors.Is(err, jcs.ErrDuplicateKey)) {
				t.Errorf("Parse: %v, want refused=%v", err, tc.exact)
			}
			_, err = jcs.ParseWith([]byte(tc.in), jcs.Options{FoldDuplicates: true})
			if (err != nil) != tc.folded || (err != nil && !errors.Is(err, jcs.ErrDuplicateKey)) {
				t.Errorf("ParseWith fold: %v, want refused=%v", err, tc.folded)
			}
		})
	}
}

// TestParseAccessors: numbers keep their literal; absent members are Invalid.
func TestParseAccessors(t *testing.T) {
	v, err := jcs.Parse([]byte(` {"a":9007199254740993,"s":"x","n":null,"l":[1,true]} `))
	if err != nil {
		t.Fatal(err)
	}
	if f, lit, ok := v.Get("a").Number(); !ok || lit != "9007199254740993" || f != 9007199254740992 {
		t.Errorf("number %v %q %v", f, lit, ok)
	}
	if s, ok := v.Get("s").Str(); !ok || s != "x" {
		t.Errorf("string %q", s)
	}
	if v.Get("n").Kind() != jcs.Null || v.Get("missing").Kind() != jcs.Invalid || v.GetFold("S").Kind() != jcs.String {
		t.Errorf("kinds %v %v %v", v.Get("n").Kind(), v.Get("missing").Kind(), v.GetFold("S").Kind())
	}
	if b, ok := v.Get("l").Index(1).Bool(); !ok || !b || v.Get("l").Len() != 2 {
		t.Errorf("array")
	}
	if k, m := v.Member(1); k != "s" || m.Kind() != jcs.String {
		t.Errorf("member 1 %q", k)
	}
}
