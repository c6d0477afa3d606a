package telemetry

import (
	"net/http"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StageTotal labels the whole decision in warden_decision_stage_seconds; the other
// stage values are the names of the gate's inbound pipeline stages (internal/gate,
// pipeline.go), except forward, which is the agent's time rather than the gate's. Stage
// names are constants of the code, never input: any identifier-shaped name is a label.
const StageTotal = "total"

// stageShape is what a stage name looks like (scrubHeaders, verifyIntent, ...); anything
// else counts as "other".
var stageShape = regexp.MustCompile(`^[a-z][a-zA-Z0-9]{0,31}$`)

// KnownStage reports whether stage is a label value of warden_decision_stage_seconds
// (anything else is counted as "other").
func KnownStage(stage string) bool { return stageShape.MatchString(stage) }

// SVID lifecycle events counted by SVIDEvent.
const (
	SVIDIssued  = "issued"
	SVIDRenewed = "renewed"
	SVIDRevoked = "revoked"
)

// reasonShape is what a reason code looks like; anything else (a SPIFFE ID, a message)
// is folded into "other" so that labels stay low-cardinality.
var reasonShape = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

// Metrics are Warden's Prometheus metrics. The zero value is not usable; use NewMetrics.
// All methods are safe for concurrent use.
type Metrics struct {
	decisions   *prometheus.CounterVec
	stage       *prometheus.HistogramVec
	svids       *prometheus.CounterVec
	trustVer    prometheus.Gauge
	trustIssued prometheus.Gauge
	replay      prometheus.Gauge
	spool       prometheus.Gauge
	shipFails   *prometheus.CounterVec
	svidExpiry  prometheus.Gauge
	anomalies   *prometheus.CounterVec
	issuedNS    atomic.Int64
	now         func() time.Time
}

// NewMetrics creates the metrics and registers them on reg. It panics if reg already
// holds metrics of the same names (a programming error, as with prometheus.MustRegister).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "warden", Name: "decisions_total",
			Help: "Gate decisions by result (allow, deny) and reason code.",
		}, []string{"result", "reason"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "warden", Name: "decision_stage_seconds",
			Help:    "Latency of each pipeline stage of a gate decision.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"stage"}),
		svids: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "warden", Name: "svids_total",
			Help: "X509-SVIDs issued, renewed and revoked.",
		}, []string{"event"}),
		trustVer: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "warden", Name: "trust_state_version",
			Help: "Version of the signed trust state in force.",
		}),
		trustIssued: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "warden", Name: "trust_state_issued_timestamp_seconds",
			Help: "Issue time of the trust state in force, Unix seconds.",
		}),
		replay: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "warden", Name: "replay_cache_entries",
			Help: "Intent jti values held in the replay cache.",
		}),
		spool: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "warden", Name: "audit_spool_depth",
			Help: "Audit events spooled at the gate and not yet acknowledged by the control plane.",
		}),
		shipFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "warden", Name: "audit_ship_failures_total",
			Help: "Failed shipments of spooled audit events to the control plane, by reason code.",
		}, []string{"reason"}),
		svidExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "warden", Name: "svid_expiry_timestamp_seconds",
			Help: "NotAfter of the X509-SVID this process presents, Unix seconds.",
		}),
		anomalies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "warden", Name: "anomalies_total",
			Help: "Anomaly signals raised, by kind.",
		}, []string{"kind"}),
		now: time.Now,
	}
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "warden", Name: "trust_state_age_seconds",
		Help: "Age of the trust state in force (0 before one is set).",
	}, func() float64 {
		// Computed at scrape time from the issue time TrustState recorded.
		issued := m.issuedNS.Load()
		if issued == 0 {
			return 0
		}
		return float64(m.now().UnixNano()-issued) / 1e9
	})
	reg.MustRegister(m.decisions, m.stage, m.svids, m.trustVer, m.trustIssued, age, m.replay, m.spool, m.shipFails,
		m.svidExpiry, m.anomalies, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"allow", "deny"} {
		m.decisions.WithLabelValues(r, "none")
	}
	for _, e := range []string{SVIDIssued, SVIDRenewed, SVIDRevoked} {
		m.svids.WithLabelValues(e)
	}
	return m
}

// label returns v when it has the shape of a code, else "other".
func label(v string) string {
	if v == "" {
		return "none"
	}
	if reasonShape.MatchString(v) {
		return v
	}
	return "other"
}

// Decision counts one decision. result is "allow" or "deny" (anything else counts as
// "other"); reason is the stable reason code ("" for none).
func (m *Metrics) Decision(result, reason string) {
	if result != "allow" && result != "deny" {
		result = "other"
	}
	m.decisions.WithLabelValues(result, label(reason)).Inc()
}

// Stage records how long one pipeline stage took. Unknown stages count as "other".
func (m *Metrics) Stage(stage string, d time.Duration) {
	if !KnownStage(stage) {
		stage = "other"
	}
	m.stage.WithLabelValues(stage).Observe(d.Seconds())
}

// SVIDEvent counts an SVID issued, renewed or revoked (SVIDIssued, ...).
func (m *Metrics) SVIDEvent(event string) {
	switch event {
	case SVIDIssued, SVIDRenewed, SVIDRevoked:
	default:
		event = "other"
	}
	m.svids.WithLabelValues(event).Inc()
}

// TrustState records the version and issue time of the trust state now in force.
func (m *Metrics) TrustState(version int64, issued time.Time) {
	m.trustVer.Set(float64(version))
	m.trustIssued.Set(float64(issued.UnixNano()) / 1e9)
	m.issuedNS.Store(issued.UnixNano())
}

// ReplayCacheSize records the number of entries in the replay cache.
func (m *Metrics) ReplayCacheSize(n int) { m.replay.Set(float64(n)) }

// SpoolDepth records the audit spool's depth (audit.Spool.Depth).
func (m *Metrics) SpoolDepth(n int64) { m.spool.Set(float64(n)) }

// AuditShipFailure counts one failed shipment of audit events, by reason code (the
// control plane's refusal code, or "unreachable").
func (m *Metrics) AuditShipFailure(reason string) { m.shipFails.WithLabelValues(label(reason)).Inc() }

// SVIDExpiry records the NotAfter of the SVID this process presents.
func (m *Metrics) SVIDExpiry(notAfter time.Time) { m.svidExpiry.Set(float64(notAfter.Unix())) }

// Anomaly counts an anomaly signal of a kind (a reason code such as "rate_spike").
func (m *Metrics) Anomaly(kind string) { m.anomalies.WithLabelValues(label(kind)).Inc() }

// Handler serves the metrics gathered from g in the Prometheus text format, for /metrics.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
