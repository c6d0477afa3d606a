package policy

import (
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// Cedar attribute names, interned once.
const (
	aName, aRole, aClass, aZone, aTD, aPartner                     = types.String("name"), types.String("role"), types.String("class"), types.String("zone"), types.String("trust_domain"), types.String("partner")
	aStatus, aAmount                                               = types.String("status"), types.String("amount")
	cPurpose, cSens, cCurrency, cTime, cAtt, cTier, cAge           = types.String("purpose"), types.String("data_sensitivity"), types.String("currency"), types.String("time"), types.String("attestation"), types.String("tier"), types.String("age_s")
	cApprovals, cCount, cApprovers, cIncident, cResponder, cZoneSt = types.String("approvals"), types.String("count"), types.String("approvers"), types.String("incident_mode"), types.String("responder"), types.String("zone_state")
	cAgentSt, cKill, cTrust                                        = types.String("agent_status"), types.String("kill_switches"), types.String("trust")
)

// requestEntities is a cedar EntityGetter over the action entities of the schema
// plus the principal and resource of one request, without copying a map per call.
type requestEntities struct {
	actions             types.EntityMap
	principal, resource types.Entity
}

func (g *requestEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	switch uid {
	case g.principal.UID:
		return g.principal, true
	case g.resource.UID:
		return g.resource, true
	}
	en, ok := g.actions[uid]
	return en, ok
}

var _ types.EntityGetter = (*requestEntities)(nil)

// build maps a Request onto a Cedar request and its entities.
func (e *Engine) build(req *Request, now time.Time) (cedar.Request, types.EntityGetter) {
	a := &req.Agent
	principal := e.principals.get(a.SPIFFEID, *a, principalEntity)
	pUID := principal.UID

	r := &req.Resource
	var resource types.Entity
	if len(r.Attrs) == 0 {
		resource = e.resources.get(r.ID, resourceKey{r.Type, r.ID, r.Status, r.Amount}, resourceEntity)
	} else {
		rm := make(types.RecordMap, 2+len(r.Attrs))
		for k, v := range r.Attrs {
			rm[types.String(k)] = types.String(v)
		}
		rm[aStatus] = types.String(r.Status)
		rm[aAmount] = types.Long(r.Amount)
		resource = types.Entity{UID: types.NewEntityUID(types.EntityType(r.Type), types.String(r.ID)), Attributes: types.NewRecord(rm)}
	}
	rUID := resource.UID

	c := &req.Context
	tv := &req.Trust
	tier := c.Attestation.Tier
	if tier == "" {
		tier = "none"
	}
	zoneState := tv.ZoneStates[a.Zone]
	if zoneState == "" || zoneState == ZoneHealthy {
		zoneState = ZoneNormal
	}
	agentState := tv.AgentStatus[a.SPIFFEID]
	if agentState == "" {
		agentState = "active"
	}
	approvals := noApprovals
	if len(c.Approvers) > 0 {
		approvers, count := distinctApprovers(c.Approvers, a)
		approvals = types.NewRecord(types.RecordMap{cCount: types.Long(count), cApprovers: approvers})
	}
	kills := ""
	if len(tv.KillSwitches) > 0 {
		ks := make([]string, 0, len(tv.KillSwitches))
		for _, k := range tv.KillSwitches {
			if k.Expires.IsZero() || now.Before(k.Expires) {
				ks = append(ks, k.Scope+":"+k.Value)
			}
		}
		kills = strings.Join(ks, "\x00")
	}
	rm := types.RecordMap{
		cPurpose:   types.String(c.Purpose),
		cTime:      types.Long(now.Unix()),
		cAtt:       e.attestations.get(Attestation{tier, c.Attestation.AgeSeconds}, attestationRecord),
		cApprovals: approvals,
		cTrust: e.trusts.get(trustKey{
			incident: tv.IncidentMode && (tv.IncidentZone == "" || tv.IncidentZone == a.Zone), responder: isResponder(tv.Responders, a),
			zoneState: zoneState, agentState: agentState, kills: kills,
		}, trustRecord),
	}
	if c.Params != nil {
		paramRecord(rm, c.Params)
	} else {
		rm[cSens], rm[aAmount], rm[cCurrency] = types.String(c.DataSensitivity), types.Long(c.Amount), types.String(c.Currency)
	}
	ctx := types.NewRecord(rm)
	return cedar.Request{
			Principal: pUID,
			Action:    types.NewEntityUID("Action", types.String(req.Action)),
			Resource:  rUID,
			Context:   ctx,
		}, &requestEntities{
			actions: e.actions, principal: principal, resource: resource,
		}
}

// distinctApprovers returns the set of approvers and how many distinct ones are
// not the caller itself (a self-approval never counts).
func distinctApprovers(in []string, a *Agent) (types.Set, int) {
	if len(in) == 0 {
		return types.Set{}, 0
	}
	vals := make([]types.Value, 0, len(in))
	n := 0
	for i, s := range in {
		if s == "" || s == a.SPIFFEID || s == a.Name {
			continue
		}
		dup := false
		for _, t := range in[:i] {
			if t == s {
				dup = true
				break
			}
		}
		if !dup {
			vals = append(vals, types.String(s))
			n++
		}
	}
	return types.NewSet(vals...), n
}

func isResponder(rs []string, a *Agent) bool {
	for _, r := range rs {
		if r != "" && (r == a.SPIFFEID || r == a.Name) {
			return true
		}
	}
	return false
}

var noApprovals = types.NewRecord(types.RecordMap{cCount: types.Long(0), cApprovers: types.NewSet()})

func principalEntity(a Agent) types.Entity {
	return types.Entity{UID: types.NewEntityUID("Agent", types.String(a.SPIFFEID)), Attributes: types.NewRecord(types.RecordMap{
		aName: types.String(a.Name), aRole: types.String(a.Role), aClass: types.String(a.Class),
		aZone: types.String(a.Zone), aTD: types.String(a.TrustDomain), aPartner: types.Boolean(a.Partner),
	})}
}

type resourceKey struct {
	typ, id, status string
	amount          int64
}

func resourceEntity(k resourceKey) types.Entity {
	return types.Entity{UID: types.NewEntityUID(types.EntityType(k.typ), types.String(k.id)),
		Attributes: types.NewRecord(types.RecordMap{aStatus: types.String(k.status), aAmount: types.Long(k.amount)})}
}

func attestationRecord(a Attestation) types.Record {
	return types.NewRecord(types.RecordMap{cTier: types.String(a.Tier), cAge: types.Long(a.AgeSeconds)})
}

// trustKey is the trust-state part of the context for one caller.
type trustKey struct {
	incident, responder   bool
	zoneState, agentState string
	kills                 string // active kill switches "scope:value", NUL-separated
}

func trustRecord(k trustKey) types.Record {
	var ks []types.Value
	if k.kills != "" {
		for _, s := range strings.Split(k.kills, "\x00") {
			ks = append(ks, types.String(s))
		}
	}
	return types.NewRecord(types.RecordMap{
		cIncident: types.Boolean(k.incident), cResponder: types.Boolean(k.responder),
		cZoneSt: types.String(k.zoneState), cAgentSt: types.String(k.agentState),
		cKill: types.NewSet(ks...),
	})
}
