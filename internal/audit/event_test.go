package audit_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/audit"
)

func TestCanonicalIsStableAndRoundTrips(t *testing.T) {
	ev := decisionEvent(3)
	ev.Time = ev.Time.In(time.FixedZone("CET", 3600)) // same instant, other zone
	ev.Detail = map[string]string{"z": "1", "a": "<&>"}
	a, err := ev.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	back, err := audit.ParseEvent(a)
	if err != nil {
		t.Fatal(err)
	}
	b, err := back.Canonical()
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("canonical bytes changed after a round trip:\n%s\n%s", a, b)
	}
	if !bytes.Contains(a, []byte(`"time":"2026-11-27T03:00:00.003Z"`)) || !bytes.Contains(a, []byte(`"detail":{"a":"<&>","z":"1"}`)) {
		t.Fatalf("canonical form: %s", a)
	}
}

func TestParseEventRejects(t *testing.T) {
	good, _ := decisionEvent(1).Canonical()
	cases := []struct{ name, in string }{
		{"unknown-field", strings.Replace(string(good), `"v":1,`, `"v":1,"admin":true,`, 1)},
		{"trailing-data", string(good) + `{}`},
		{"wrong-version", strings.Replace(string(good), `"v":1`, `"v":2`, 1)},
		{"unknown-kind", strings.Replace(string(good), `"kind":"decision"`, `"kind":"party"`, 1)},
		{"decision-not-allow-or-deny", strings.Replace(string(good), `"decision":"allow"`, `"decision":"permit"`, 1)},
		{"missing-time", strings.Replace(string(good), `"time":"2026-11-27T03:00:00.001Z",`, ``, 1)},
		{"empty-id", strings.Replace(string(good), `"id":"dec-00000001"`, `"id":""`, 1)},
		{"id-with-newline", strings.Replace(string(good), `"id":"dec-00000001"`, `"id":"a\nb"`, 1)},
		{"negative-latency", strings.Replace(string(good), `"latency_us":412`, `"latency_us":-1`, 1)},
		{"lifecycle-with-decision", strings.Replace(string(good), `"kind":"decision"`, `"kind":"revocation"`, 1)},
		{"not-utf8", "{\"v\":1,\"id\":\"\xff\"}"},
		{"oversized", `{"v":1,"id":"x","reason":"` + strings.Repeat("a", audit.MaxEventSize) + `"}`},
		{"not-an-object", `[]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := audit.ParseEvent([]byte(tc.in)); !errors.Is(err, audit.ErrInvalidEvent) {
				t.Fatalf("err %v, want ErrInvalidEvent", err)
			}
		})
	}
	if _, err := audit.ParseEvent(good); err != nil {
		t.Fatalf("good event rejected: %v", err)
	}
}

// FuzzParseEvent: events arrive from gates (untrusted). Whatever parses must re-encode to
// canonical bytes that parse again to the same canonical bytes.
func FuzzParseEvent(f *testing.F) {
	good, _ := decisionEvent(1).Canonical()
	f.Add(good)
	life, _ := audit.Event{V: 1, ID: "e1", Kind: audit.KindRevocation, Time: t0, Subject: "spiffe://example.org/agent/x",
		Actor: "operator", Reason: "compromised", Serial: "0a1b", Detail: map[string]string{"k": "v"}}.Canonical()
	f.Add(life)
	f.Add([]byte(`{"v":1,"id":"x","kind":"decision","time":"2026-01-01T00:00:00Z","decision":"deny"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"v":1,"id":"x","id":"y","kind":"anomaly","time":"2026-01-01T00:00:00+01:00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := audit.ParseEvent(data)
		if err != nil {
			return
		}
		c1, err := ev.Canonical()
		if err != nil {
			if errors.Is(err, audit.ErrInvalidEvent) {
				return // e.g. canonical form over the size limit
			}
			t.Fatalf("parsed event does not encode: %v", err)
		}
		ev2, err := audit.ParseEvent(c1)
		if err != nil {
			t.Fatalf("canonical bytes do not parse: %v\n%s", err, c1)
		}
		c2, _ := ev2.Canonical()
		if !bytes.Equal(c1, c2) {
			t.Fatalf("canonical form not stable:\n%s\n%s", c1, c2)
		}
	})
}
