package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// OTLPExporter sends audit events as OpenTelemetry log records over OTLP/HTTP with the
// JSON encoding (OTLP specification, "OTLP/HTTP" and "JSON Protobuf Encoding"): POST
// ENDPOINT/v1/logs, Content-Type application/json, one ExportLogsServiceRequest per
// batch. Each record's body is the event's canonical bytes (what the Merkle log hashes),
// its attributes the fields a SIEM filters on, its trace and span ids the event's (hex, as
// the JSON encoding requires). It needs no OpenTelemetry SDK and no network beyond the
// endpoint.
type OTLPExporter struct {
	Endpoint string       // e.g. http://collector:4318
	Client   *http.Client // default http.DefaultClient
	Service  string       // resource service.name; default "warden"
}

type otlpAnyValue struct {
	StringValue string `json:"stringValue"`
}

type otlpKeyValue struct {
	Key   string       `json:"key"`
	Value otlpAnyValue `json:"value"`
}

type otlpLogRecord struct {
	TimeUnixNano         string         `json:"timeUnixNano"`
	ObservedTimeUnixNano string         `json:"observedTimeUnixNano"`
	SeverityNumber       int            `json:"severityNumber"`
	SeverityText         string         `json:"severityText"`
	Body                 otlpAnyValue   `json:"body"`
	Attributes           []otlpKeyValue `json:"attributes"`
	TraceID              string         `json:"traceId,omitempty"`
	SpanID               string         `json:"spanId,omitempty"`
}

// OTLP severity numbers (logs data model): INFO = 9, WARN = 13.
const (
	otlpInfo = 9
	otlpWarn = 13
)

// Export sends one batch of records (read from the log with Storage.Records).
func (x OTLPExporter) Export(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	logs := make([]otlpLogRecord, 0, len(recs))
	for _, r := range recs {
		ev, err := ParseEvent(r.Data)
		if err != nil {
			return fmt.Errorf("audit: otlp: record %d: %w", r.Index, err)
		}
		sev, text := otlpInfo, "INFO"
		if ev.Decision == DecisionDeny || ev.Kind == KindAnomaly || ev.Outcome == "refused" {
			sev, text = otlpWarn, "WARN"
		}
		ts := strconv.FormatInt(ev.Time.UnixNano(), 10)
		attrs := []otlpKeyValue{
			{"warden.audit.index", otlpAnyValue{strconv.FormatInt(r.Index, 10)}},
			{"warden.event.id", otlpAnyValue{ev.ID}},
			{"warden.event.kind", otlpAnyValue{string(ev.Kind)}},
		}
		for _, kv := range [][2]string{{"warden.reason", ev.Reason}, {"warden.decision", ev.Decision},
			{"warden.workflow_id", ev.WorkflowID}, {"warden.caller", ev.Caller}, {"warden.callee", ev.Callee},
			{"warden.action", ev.Action}, {"warden.subject", ev.Subject}, {"warden.outcome", ev.Outcome}} {
			if kv[1] != "" {
				attrs = append(attrs, otlpKeyValue{kv[0], otlpAnyValue{kv[1]}})
			}
		}
		logs = append(logs, otlpLogRecord{TimeUnixNano: ts, ObservedTimeUnixNano: ts, SeverityNumber: sev, SeverityText: text,
			Body: otlpAnyValue{string(r.Data)}, Attributes: attrs, TraceID: ev.TraceID, SpanID: ev.SpanID})
	}
	service := x.Service
	if service == "" {
		service = "warden"
	}
	req := map[string]any{"resourceLogs": []any{map[string]any{
		"resource": map[string]any{"attributes": []otlpKeyValue{{"service.name", otlpAnyValue{service}}}},
		"scopeLogs": []any{map[string]any{
			"scope":      map[string]string{"name": "github.com/warden-a2a/warden/internal/audit"},
			"logRecords": logs,
		}},
	}}}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(x.Endpoint, "/")+"/v1/logs", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("audit: otlp: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	client := x.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(hreq)
	if err != nil {
		return fmt.Errorf("audit: otlp: %w", err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("audit: otlp: collector answered %d: %s", res.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}
