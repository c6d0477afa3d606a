package audit_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/audit"
)

// TestOTLPExport: a loopback "collector" receives OTLP/HTTP JSON log records whose bodies
// are the events' canonical bytes, with the attributes and ids a SIEM filters on.
func TestOTLPExport(t *testing.T) {
	var mu sync.Mutex
	var got map[string]any
	var path, ctype string
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		path, ctype = r.URL.Path, r.Header.Get("Content-Type")
		if err := json.Unmarshal(b, &got); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer col.Close()
	ev := audit.Event{V: 1, ID: "dec-1", Kind: audit.KindDecision, Time: time.Unix(1700000000, 5).UTC(), Decision: audit.DecisionDeny,
		Reason: "replay", Caller: "spiffe://supplychain.example/agent/x", TraceID: strings.Repeat("ab", 16), SpanID: strings.Repeat("cd", 8)}
	data, err := ev.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	x := audit.OTLPExporter{Endpoint: col.URL}
	if err := x.Export(context.Background(), []audit.Record{{Index: 41, Entry: audit.Entry{Data: data}}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if path != "/v1/logs" || ctype != "application/json" {
		t.Errorf("posted to %s as %s", path, ctype)
	}
	rec := got["resourceLogs"].([]any)[0].(map[string]any)["scopeLogs"].([]any)[0].(map[string]any)["logRecords"].([]any)[0].(map[string]any)
	if rec["body"].(map[string]any)["stringValue"] != string(data) || rec["timeUnixNano"] != "1700000000000000005" ||
		rec["severityText"] != "WARN" || rec["traceId"] != ev.TraceID || rec["spanId"] != ev.SpanID {
		t.Errorf("record %v", rec)
	}
	attrs := map[string]string{}
	for _, a := range rec["attributes"].([]any) {
		m := a.(map[string]any)
		attrs[m["key"].(string)] = m["value"].(map[string]any)["stringValue"].(string)
	}
	if attrs["warden.audit.index"] != "41" || attrs["warden.reason"] != "replay" || attrs["warden.event.kind"] != "decision" {
		t.Errorf("attributes %v", attrs)
	}
	// A collector that refuses is an error.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 503) }))
	defer bad.Close()
	if err := (audit.OTLPExporter{Endpoint: bad.URL}).Export(context.Background(), []audit.Record{{Entry: audit.Entry{Data: data}}}); err == nil {
		t.Error("a 503 from the collector was not an error")
	}
}
