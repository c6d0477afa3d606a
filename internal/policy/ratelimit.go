package policy

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// RateLimit is one token bucket rule from ratelimits.yaml. Each (agent, action)
// pair that a rule matches gets its own bucket of Burst tokens, refilled at
// PerSecond tokens per second. Only calls the policies allow take a token.
type RateLimit struct {
	ID        string
	Agent     string // SPIFFE ID, agent name, or "*"
	Action    string // action name or "*"
	Rate      string // as written: "30/m"
	PerSecond float64
	Burst     int
}

type rateLimitFile struct {
	Limits []struct {
		ID     string `yaml:"id"`
		Agent  string `yaml:"agent"`
		Action string `yaml:"action"`
		Rate   string `yaml:"rate"`
		Burst  int    `yaml:"burst"`
	} `yaml:"limits"`
}

// ParseRateLimits parses a ratelimits.yaml document.
func ParseRateLimits(b []byte) ([]RateLimit, error) {
	var f rateLimitFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("rate limits: %v", err)
	}
	var out []RateLimit
	ids := map[string]bool{}
	for i, l := range f.Limits {
		if l.ID == "" || ids[l.ID] {
			return nil, fmt.Errorf("rate limits: limit %d: missing or duplicate id %q", i+1, l.ID)
		}
		ids[l.ID] = true
		if l.Agent == "" || l.Action == "" {
			return nil, fmt.Errorf("rate limits: %s: agent and action are required (use \"*\" for any)", l.ID)
		}
		ps, err := parseRate(l.Rate)
		if err != nil {
			return nil, fmt.Errorf("rate limits: %s: %v", l.ID, err)
		}
		if l.Burst < 1 || l.Burst > 1_000_000 {
			return nil, fmt.Errorf("rate limits: %s: burst must be between 1 and 1000000", l.ID)
		}
		out = append(out, RateLimit{ID: l.ID, Agent: l.Agent, Action: l.Action, Rate: l.Rate, PerSecond: ps, Burst: l.Burst})
	}
	return out, nil
}

// parseRate reads "N/s", "N/m" or "N/h" as tokens per second.
func parseRate(s string) (float64, error) {
	n, unit, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("rate %q must look like 10/s, 30/m or 100/h", s)
	}
	v, err := strconv.ParseFloat(n, 64)
	if err != nil || v <= 0 || v > 1e9 {
		return 0, fmt.Errorf("rate %q: count must be a positive number", s)
	}
	switch unit {
	case "s":
		return v, nil
	case "m":
		return v / 60, nil
	case "h":
		return v / 3600, nil
	}
	return 0, fmt.Errorf("rate %q: unit must be s, m or h", s)
}

func (l RateLimit) canonical() string {
	return strconv.Quote(fmt.Sprintf("%s|%s|%s|%g|%d", l.ID, l.Agent, l.Action, l.PerSecond, l.Burst))
}

func (l *RateLimit) matches(a *Agent, action string) bool {
	return (l.Action == "*" || l.Action == action) &&
		(l.Agent == "*" || l.Agent == a.SPIFFEID || l.Agent == a.Name)
}

type bucketKey struct{ agent, action string }

type bucket struct {
	tokens float64
	last   time.Time
}

// limiter holds the rules and the buckets; safe for concurrent use.
type limiter struct {
	limits []RateLimit
	mu     sync.Mutex
	b      map[bucketKey]*bucket
}

func newLimiter(ls []RateLimit) *limiter {
	return &limiter{limits: ls, b: map[bucketKey]*bucket{}}
}

// rule returns the first limit matching (agent, action), or nil.
func (l *limiter) rule(a *Agent, action string) *RateLimit {
	for i := range l.limits {
		if l.limits[i].matches(a, action) {
			return &l.limits[i]
		}
	}
	return nil
}

// take removes one token from the bucket of (agent, action) under rule r and
// reports whether one was there. Time going backwards refills nothing.
func (l *limiter) take(r *RateLimit, agent, action string, now time.Time) bool {
	k := bucketKey{agent, action}
	l.mu.Lock()
	defer l.mu.Unlock()
	bk := l.b[k]
	if bk == nil {
		bk = &bucket{tokens: float64(r.Burst), last: now}
		l.b[k] = bk
	}
	if el := now.Sub(bk.last); el > 0 {
		bk.tokens = min(float64(r.Burst), bk.tokens+el.Seconds()*r.PerSecond)
		bk.last = now
	}
	if bk.tokens < 1 {
		return false
	}
	bk.tokens--
	return true
}

func (l *limiter) reset() {
	l.mu.Lock()
	l.b = map[bucketKey]*bucket{}
	l.mu.Unlock()
}

func (l *limiter) sameRules(o *limiter) bool {
	if len(l.limits) != len(o.limits) {
		return false
	}
	for i := range l.limits {
		if l.limits[i].canonical() != o.limits[i].canonical() {
			return false
		}
	}
	return true
}
