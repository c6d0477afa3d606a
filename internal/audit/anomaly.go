package audit

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Anomaly reason codes (Event.Reason of KindAnomaly events).
const (
	AnomalyRepeatedDenials  = "repeated_denials"   // one caller denied DenyThreshold times within Window
	AnomalyCertChurn        = "cert_churn"         // ChurnThreshold enrollments/renewals/revocations of one subject within Window
	AnomalyCrossZone        = "cross_zone"         // a caller reached a zone it had not reached before
	AnomalyPartnerToPartner = "partner_to_partner" // a partner agent called another partner agent through us
	AnomalyRateSpike        = "rate_spike"         // a caller's calls in a window jumped RateFactor× over its average
)

// DetectorConfig tunes a Detector; zero fields take the defaults shown.
type DetectorConfig struct {
	Window         time.Duration // default 1 minute
	DenyThreshold  int           // default 5
	ChurnThreshold int           // default 5
	RateFactor     float64       // default 5
	RateMin        int           // a spike needs at least this many calls in the window; default 100
	// HomeTrustDomain: SPIFFE IDs of other trust domains are partners. Empty: nobody is.
	HomeTrustDomain string
	// ZoneOf returns the home zone of an agent ("" when unknown); nil disables cross_zone.
	ZoneOf func(spiffeID string) string
	// Emit receives each anomaly event (append it to the log; trigger event-driven
	// attestation of ev.Subject). Called with no lock held, in the Observe caller.
	Emit func(ev Event)
}

// Detector consumes audit events and raises anomaly events. It keeps bounded state per
// agent and signals each (agent, anomaly) at most once per Window. Safe for concurrent use.
type Detector struct {
	cfg DetectorConfig

	mu       sync.Mutex
	denials  map[string][]time.Time // caller → recent denial times
	churn    map[string][]time.Time // subject → recent SVID lifecycle times
	routes   map[string]bool        // "callerZone→zone" seen
	rate     map[string]*rateState  // caller → call rate
	cooldown map[string]time.Time   // reason+agent → last signal
	seen     int
}

type rateState struct {
	window time.Time // start of the current window
	count  int
	avg    float64 // exponentially weighted average of earlier windows' counts
	primed bool
}

// NewDetector returns a detector emitting through cfg.Emit.
func NewDetector(cfg DetectorConfig) *Detector {
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.DenyThreshold <= 0 {
		cfg.DenyThreshold = 5
	}
	if cfg.ChurnThreshold <= 0 {
		cfg.ChurnThreshold = 5
	}
	if cfg.RateFactor <= 0 {
		cfg.RateFactor = 5
	}
	if cfg.RateMin <= 0 {
		cfg.RateMin = 100
	}
	if cfg.Emit == nil {
		cfg.Emit = func(Event) {}
	}
	return &Detector{cfg: cfg, denials: map[string][]time.Time{}, churn: map[string][]time.Time{},
		routes: map[string]bool{}, rate: map[string]*rateState{}, cooldown: map[string]time.Time{}}
}

// Observe feeds one event (in roughly time order) and emits any anomaly it completes.
func (d *Detector) Observe(ev Event) {
	var out []Event
	d.mu.Lock()
	now := ev.Time
	raise := func(reason, agent string, detail map[string]string) {
		key := reason + " " + agent
		if last, ok := d.cooldown[key]; ok && now.Sub(last) < d.cfg.Window {
			return
		}
		d.cooldown[key] = now
		detail["trigger_id"] = ev.ID
		out = append(out, Event{V: SchemaVersion, ID: "anomaly-" + randomID(), Kind: KindAnomaly, Time: now,
			WorkflowID: ev.WorkflowID, Subject: agent, Actor: "detector", Reason: reason, Detail: detail})
	}
	switch ev.Kind {
	case KindDecision:
		if ev.Caller != "" && ev.Decision == DecisionDeny {
			ts := d.recent(d.denials, ev.Caller, now)
			if len(ts) >= d.cfg.DenyThreshold {
				raise(AnomalyRepeatedDenials, ev.Caller, map[string]string{"count": strconv.Itoa(len(ts)), "window": d.cfg.Window.String()})
			}
		}
		if d.cfg.ZoneOf != nil && ev.Caller != "" && ev.Zone != "" {
			if from := d.cfg.ZoneOf(ev.Caller); from != "" && from != ev.Zone {
				route := from + "→" + ev.Zone
				if !d.routes[route] {
					d.routes[route] = true
					raise(AnomalyCrossZone, ev.Caller, map[string]string{"from_zone": from, "to_zone": ev.Zone})
				}
			}
		}
		if d.partner(ev.Caller) && d.partner(ev.Callee) {
			raise(AnomalyPartnerToPartner, ev.Caller, map[string]string{"callee": ev.Callee})
		}
		if ev.Caller != "" {
			d.observeRate(ev.Caller, now, raise)
		}
	case KindEnrollment, KindRenewal, KindRevocation:
		if ev.Subject != "" {
			ts := d.recent(d.churn, ev.Subject, now)
			if len(ts) >= d.cfg.ChurnThreshold {
				raise(AnomalyCertChurn, ev.Subject, map[string]string{"count": strconv.Itoa(len(ts)), "window": d.cfg.Window.String()})
			}
		}
	}
	if d.seen++; d.seen%4096 == 0 {
		d.prune(now)
	}
	d.mu.Unlock()
	for _, a := range out {
		d.cfg.Emit(a)
	}
}

// recent appends now to m[key], drops times older than the window and returns the rest.
func (d *Detector) recent(m map[string][]time.Time, key string, now time.Time) []time.Time {
	ts := append(m[key], now)
	cut := 0
	for cut < len(ts) && now.Sub(ts[cut]) >= d.cfg.Window {
		cut++
	}
	ts = ts[cut:]
	if len(ts) > 4*d.cfg.DenyThreshold+4*d.cfg.ChurnThreshold { // bound memory per agent
		ts = ts[len(ts)-(4*d.cfg.DenyThreshold+4*d.cfg.ChurnThreshold):]
	}
	m[key] = ts
	return ts
}

func (d *Detector) observeRate(caller string, now time.Time, raise func(string, string, map[string]string)) {
	st := d.rate[caller]
	start := now.Truncate(d.cfg.Window)
	if st == nil {
		st = &rateState{window: start}
		d.rate[caller] = st
	}
	if start.After(st.window) {
		// Close the finished window (and count empty windows in between as zero).
		missed := int(start.Sub(st.window)/d.cfg.Window) - 1
		if st.primed {
			st.avg = 0.7*st.avg + 0.3*float64(st.count)
		} else {
			st.avg, st.primed = float64(st.count), true
		}
		for i := 0; i < missed && i < 16; i++ {
			st.avg *= 0.7
		}
		st.window, st.count = start, 0
	}
	st.count++
	if st.primed && st.count >= d.cfg.RateMin && float64(st.count) > d.cfg.RateFactor*st.avg {
		raise(AnomalyRateSpike, caller, map[string]string{"count": strconv.Itoa(st.count),
			"average": strconv.FormatFloat(st.avg, 'f', 1, 64), "window": d.cfg.Window.String()})
	}
}

// partner reports whether id is a SPIFFE ID of a trust domain other than the home one.
func (d *Detector) partner(id string) bool {
	if d.cfg.HomeTrustDomain == "" {
		return false
	}
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		return false
	}
	td, _, _ := strings.Cut(rest, "/")
	return td != "" && td != d.cfg.HomeTrustDomain
}

// prune forgets agents idle for more than two windows.
func (d *Detector) prune(now time.Time) {
	idle := func(ts []time.Time) bool { return len(ts) == 0 || now.Sub(ts[len(ts)-1]) > 2*d.cfg.Window }
	for k, ts := range d.denials {
		if idle(ts) {
			delete(d.denials, k)
		}
	}
	for k, ts := range d.churn {
		if idle(ts) {
			delete(d.churn, k)
		}
	}
	for k, st := range d.rate {
		if now.Sub(st.window) > 16*d.cfg.Window {
			delete(d.rate, k)
		}
	}
	for k, t := range d.cooldown {
		if now.Sub(t) > d.cfg.Window {
			delete(d.cooldown, k)
		}
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
