// Package truststate is the signed, monotonically versioned document through which the
// control plane tells every gate what changed: revoked identities and serials, quarantined
// and suspended agents, kill switches, incident mode, zone states and the policy bundle
// revision. Gates decide locally from the newest document they have verified and refuse
// any document older than the one they hold.
//
// Wire form: a JWS (RFC 7515) in compact serialization, alg ES256, typ
// "warden-trust-state+jwt", whose x5c header (RFC 7515 §4.1.6) carries the control plane's
// X509-SVID chain (spiffe://TRUST_DOMAIN/warden/server). A relying party verifies that chain
// against the trust bundle with go-spiffe, checks that its SPIFFE ID is the server's, then
// checks the signature over the bytes as received. See docs/trust-state.md.
package truststate

import (
	"encoding/json"
	"slices"
	"time"
)

// Agent statuses. An agent with no entry in Agents is active.
const (
	StatusQuarantined = "quarantined" // reads go on, audited; policy restricts the rest
	StatusSuspended   = "suspended"   // no renewal, every call refused
	// StatusReview: calls are held for manual review; no renewal until an operator
	// restores the agent (set by a failed attestation of a transactional agent).
	StatusReview = "review"
)

// Zone states. An operator sets normal, degraded or quarantined (`warden zone set`);
// offline is kept for zones whose gates are known to be cut off (every call refused).
// Documents written before these names said "healthy" for normal: NormalZoneState maps
// it, so a gate reading an old cached document still understands it.
const (
	ZoneNormal      = "normal"
	ZoneDegraded    = "degraded"    // regulated actions from it refused; the rest goes on
	ZoneQuarantined = "quarantined" // only reads from it
	ZoneOffline     = "offline"     // every call from it refused
	// ZoneHealthy is the old name of ZoneNormal; never written any more.
	ZoneHealthy = "healthy"
)

// ZoneStates lists the states an operator may set, in order of severity.
var ZoneStates = []string{ZoneNormal, ZoneDegraded, ZoneQuarantined, ZoneOffline}

// NormalZoneState returns the canonical name of a zone state: "" and the old "healthy"
// are ZoneNormal; anything else is returned as it is.
func NormalZoneState(s string) string {
	if s == "" || s == ZoneHealthy {
		return ZoneNormal
	}
	return s
}

// Document is one version of the trust state. The zero value of every field means
// "nothing in force".
type Document struct {
	TrustDomain    string                `json:"trust_domain"`
	Version        int64                 `json:"version"`
	IssuedAt       time.Time             `json:"issued_at"`
	RevokedIDs     map[string]Revocation `json:"revoked_ids,omitempty"`     // by SPIFFE ID
	RevokedSerials map[string]Revocation `json:"revoked_serials,omitempty"` // by lower-case hex serial
	Agents         map[string]AgentState `json:"agents,omitempty"`          // by SPIFFE ID
	KillSwitches   []KillSwitch          `json:"kill_switches,omitempty"`
	IncidentMode   bool                  `json:"incident_mode,omitempty"`
	Responders     []string              `json:"responders,omitempty"` // SPIFFE IDs allowed to act during an incident
	// Incident says who declared the incident mode in force, when, why and where (a
	// zone, or everywhere); nil when IncidentMode is false.
	Incident       *Incident       `json:"incident,omitempty"`
	Zones          map[string]Zone `json:"zones,omitempty"`
	PolicyRevision string          `json:"policy_revision,omitempty"`
	// Attestations is the newest attestation result per agent (by SPIFFE ID), written by
	// the control plane (the RATS verifier) after every appraisal; gates (relying parties)
	// read tier and age from it. See docs/attestation.md.
	Attestations map[string]Attestation `json:"attestations,omitempty"`
	// Challenges are pending event-driven re-attestation requests by SPIFFE ID. The agent
	// answers by renewing with fresh evidence before Deadline; an affirming answer removes
	// the entry, no answer by Deadline counts as stale_evidence.
	Challenges map[string]Challenge `json:"challenges,omitempty"`
	// Directory holds the attributes of every registered workload by SPIFFE ID, as the
	// control plane's entries say: gates build the policy principal from it, so a
	// caller's role, class and zone come from the control plane, signed, not from each
	// gate's local configuration.
	Directory map[string]DirectoryEntry `json:"directory,omitempty"`
	// Federation holds the federated trust domains by name (docs/federation.md): where
	// each one's SPIFFE bundle is fetched from and the bundle as last fetched. Gates
	// accept X509-SVIDs of these trust domains, each verified with its own bundle only
	// (SPIFFE Federation §4.2, §7.3); a trust domain that leaves this map is refused at
	// the next handshake and the next request on a kept-alive connection.
	Federation map[string]FederatedDomain `json:"federation,omitempty"`
}

// FederatedDomain is one federation relationship (SPIFFE Federation §5.1) and the
// foreign bundle it keeps.
type FederatedDomain struct {
	EndpointURL      string `json:"endpoint_url"`
	Profile          string `json:"profile"`                      // https_spiffe | https_web
	EndpointSPIFFEID string `json:"endpoint_spiffe_id,omitempty"` // https_spiffe only
	// Bundle is the trust domain's SPIFFE bundle document (SPIFFE Trust Domain and
	// Bundle §4), as fetched and checked by the control plane.
	Bundle      json.RawMessage `json:"bundle"`
	RefreshedAt time.Time       `json:"refreshed_at"` // when Bundle last changed
	AddedAt     time.Time       `json:"added_at"`
	// Role, Class and Zone are the policy attributes of this trust domain's agents
	// where a gate's peers configuration does not name the agent (docs/gate.md); with no
	// Role here or there, a gate refuses the caller as unknown_peer.
	Role  string `json:"role,omitempty"`
	Class string `json:"class,omitempty"`
	Zone  string `json:"zone,omitempty"`
}

// Attestation is the newest attestation result of one agent (AR4SI tier and reason).
type Attestation struct {
	Tier           string    `json:"tier"`                      // none | affirming | warning | contraindicated
	Reason         string    `json:"reason,omitempty"`          // attest reason code when not affirming
	EvidenceDigest string    `json:"evidence_digest,omitempty"` // "sha256:<hex>" of the evidence appraised
	At             time.Time `json:"at"`                        // when the appraisal was made
	ResultID       string    `json:"result_id"`                 // random id, also in the control plane's log
	// Action is what the control plane did: allow, quarantine, review, suspend (the
	// role-aware fail-closed table) or refuse (an enrollment refused: no SVID issued).
	Action string `json:"action"`
}

// Affirming reports whether the result is affirming and no older than maxAge at now.
func (a Attestation) Affirming(now time.Time, maxAge time.Duration) bool {
	return a.Tier == "affirming" && a.Reason == "" && now.Sub(a.At) <= maxAge
}

// Challenge is a pending event-driven re-attestation request.
type Challenge struct {
	Rule     string    `json:"rule"` // admin, higher_class_action, uncataloged_path, dependency_change, denials
	At       time.Time `json:"at"`
	Deadline time.Time `json:"deadline"`
}

// Revocation records why and when an identity or serial was revoked.
type Revocation struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// AgentState is a non-active status of an agent.
type AgentState struct {
	Status string    `json:"status"` // StatusQuarantined | StatusSuspended
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// KillSwitch denies every call in its scope, even where a policy or an exception
// permits it.
type KillSwitch struct {
	// ID names the switch ("ks-" and 12 hex digits); empty in documents written before
	// switches had ids.
	ID     string    `json:"id,omitempty"`
	Scope  string    `json:"scope"` // "action" | "workflow" | "agent" | "zone"
	Value  string    `json:"value"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Expires, when set, releases the switch at that time by itself (--ttl): every gate
	// stops applying it then, with or without the control plane.
	Expires time.Time `json:"expires,omitzero"`
	Actor
}

// Active reports whether the switch applies at now (it has not expired).
func (k KillSwitch) Active(now time.Time) bool { return k.Expires.IsZero() || now.Before(k.Expires) }

// Actor is who made an operator change: By is the SPIFFE ID of the credential that
// called the admin API (authenticated), Operator the person it named (declared by the
// caller, e.g. from --operator; not verified).
type Actor struct {
	By       string `json:"by,omitempty"`
	Operator string `json:"operator,omitempty"`
}

// String renders the actor for people: "alice (spiffe://td/warden/admin)".
func (a Actor) String() string {
	switch {
	case a.Operator != "" && a.By != "":
		return a.Operator + " (" + a.By + ")"
	case a.Operator != "":
		return a.Operator
	}
	return a.By
}

// Incident is incident mode in force: during it the default policy refuses every
// transactional or regulated action unless the caller is one of Responders; reads go on.
type Incident struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// Zone limits the incident to calls from agents of that zone and to gates in it;
	// empty: everywhere.
	Zone string `json:"zone,omitempty"`
	Actor
}

// Zone is the state of a zone and how stale a gate in it may let its trust state get.
type Zone struct {
	State        string    `json:"state"`                   // ZoneNormal | ZoneDegraded | ZoneQuarantined | ZoneOffline
	MaxStaleness string    `json:"max_staleness,omitempty"` // Go duration, e.g. "5m"
	Reason       string    `json:"reason,omitempty"`
	Since        time.Time `json:"since,omitzero"` // when the state was last set
	Actor
}

// IsRevoked reports whether the identity or the certificate serial is revoked.
func (d *Document) IsRevoked(spiffeID, serialHex string) (Revocation, bool) {
	if r, ok := d.RevokedIDs[spiffeID]; ok {
		return r, true
	}
	if serialHex != "" {
		if r, ok := d.RevokedSerials[serialHex]; ok {
			return r, true
		}
	}
	return Revocation{}, false
}

// Status returns the agent's status: "active", StatusQuarantined, StatusReview or
// StatusSuspended.
func (d *Document) Status(spiffeID string) string {
	if s, ok := d.Agents[spiffeID]; ok {
		return s.Status
	}
	return "active"
}

// Clone returns a deep copy, so an update function can change it freely.
func (d *Document) Clone() *Document {
	c := *d
	c.RevokedIDs = cloneMap(d.RevokedIDs)
	c.RevokedSerials = cloneMap(d.RevokedSerials)
	c.Agents = cloneMap(d.Agents)
	c.Zones = cloneMap(d.Zones)
	c.Attestations = cloneMap(d.Attestations)
	c.Challenges = cloneMap(d.Challenges)
	c.Directory = cloneMap(d.Directory)
	c.Federation = cloneMap(d.Federation)
	c.KillSwitches = slices.Clone(d.KillSwitches)
	c.Responders = slices.Clone(d.Responders)
	if d.Incident != nil {
		in := *d.Incident
		c.Incident = &in
	}
	return &c
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// DirectoryEntry is one registered workload's attributes.
type DirectoryEntry struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	Class string `json:"class"`
	Zone  string `json:"zone"`
}
