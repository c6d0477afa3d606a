package api

import (
	"time"

	"github.com/warden-a2a/warden/internal/truststate"
)

// Paths of the live controls (docs/api.md, "Live controls"). Every one needs the admin
// credential; each change writes a new trust-state version that gates follow.
const (
	// PathAdminKillSwitches: POST engages a kill switch (KillSwitchRequest).
	PathAdminKillSwitches = "/v1/admin/killswitches"
	// PathAdminKillSwitchRelease: POST releases switches by id or by scope and value.
	PathAdminKillSwitchRelease = "/v1/admin/killswitches/release"
	// PathAdminIncident + "start" | "end": POST (IncidentRequest).
	PathAdminIncident = "/v1/admin/incident/"
	// PathAdminZones + NAME: PUT sets a zone's state (ZoneRequest).
	PathAdminZones = "/v1/admin/zones/"
	// PathAdminStatus: GET what is in force (Status).
	PathAdminStatus = "/v1/admin/status"
)

// Kill-switch scopes.
var KillSwitchScopes = []string{"action", "agent", "workflow", "zone"}

// Limits of operator-supplied text.
const (
	MaxReasonBytes   = 512
	MaxOperatorBytes = 64
	MaxResponders    = 64
	MaxKillSwitches  = 256 // engaged at once
)

// KillSwitchRequest engages a kill switch on one scope: an action (or "*"), an agent
// (SPIFFE ID or name), a workflow (name or id) or a zone.
type KillSwitchRequest struct {
	Scope  string `json:"scope"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
	// TTLSec, when > 0, releases the switch by itself after that many seconds.
	TTLSec int64 `json:"ttl_s,omitempty"`
	// Operator names the person acting (recorded with the admin credential's identity).
	Operator string `json:"operator,omitempty"`
}

// KillSwitchRelease releases the switch with ID, or every switch on Scope and Value.
type KillSwitchRelease struct {
	ID       string `json:"id,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Value    string `json:"value,omitempty"`
	Reason   string `json:"reason"`
	Operator string `json:"operator,omitempty"`
}

// IncidentRequest starts or ends incident mode. Responders (SPIFFE IDs or agent names)
// and Zone apply to start only.
type IncidentRequest struct {
	Reason     string   `json:"reason"`
	Responders []string `json:"responders,omitempty"`
	Zone       string   `json:"zone,omitempty"`
	Operator   string   `json:"operator,omitempty"`
}

// ZoneRequest sets a zone's state: normal, degraded, quarantined or offline.
// MaxStaleness (a Go duration, e.g. "2m") bounds the trust-state age gates of the zone
// accept; "" keeps the zone's current value, "0" removes it.
type ZoneRequest struct {
	State        string `json:"state"`
	MaxStaleness string `json:"max_staleness,omitempty"`
	Reason       string `json:"reason"`
	Operator     string `json:"operator,omitempty"`
}

// LiveChangeResponse reports the trust-state version that carries a change, the id of an
// engaged kill switch and the ids of released ones.
type LiveChangeResponse struct {
	Version  int64    `json:"version"`
	ID       string   `json:"id,omitempty"`
	Released []string `json:"released,omitempty"`
}

// Status is what is in force now (GET /v1/admin/status): the newest trust-state version
// and what it engages, each with since when and by whom.
type Status struct {
	TrustStateVersion int64                            `json:"trust_state_version"`
	IssuedAt          time.Time                        `json:"issued_at"`
	PolicyRevision    string                           `json:"policy_revision,omitempty"`
	KillSwitches      []truststate.KillSwitch          `json:"kill_switches"`
	Incident          *truststate.Incident             `json:"incident,omitempty"`
	Responders        []string                         `json:"responders,omitempty"`
	Zones             map[string]truststate.Zone       `json:"zones,omitempty"`
	Agents            map[string]truststate.AgentState `json:"agents,omitempty"` // quarantined, suspended, review
	RevokedIDs        int                              `json:"revoked_ids"`
	RevokedSerials    int                              `json:"revoked_serials"`
	Challenges        map[string]truststate.Challenge  `json:"challenges,omitempty"`
}
