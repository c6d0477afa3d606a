package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/store"
)

// Gates with their own identity (docs/gate.md, "Identity"). A gate registered with
// `warden entry create --kind gate --guards AGENT` is spiffe://TD/gate/NAME; its entry's
// attribute guardsAttr names the SPIFFE ID of the one agent it stands in front of. The
// control plane then accepts from that identity audit decision events about that agent
// (and no other), and approvals filed for calls to it. A gate's class is its agent's:
// registering a gate of another class is refused, so the gate's identity never has a
// weaker renewal path (attestation by class) than the agent's.

// guardsAttr is the entry attribute, managed by the control plane, naming the agent a
// gate guards.
const guardsAttr = "guards"

// guardsOf returns the SPIFFE ID an entry's attributes say it guards, or "".
func guardsOf(attrs []byte) string {
	var m map[string]json.RawMessage
	if len(bytes.TrimSpace(attrs)) == 0 || json.Unmarshal(attrs, &m) != nil {
		return ""
	}
	var id string
	if raw, ok := m[guardsAttr]; !ok || json.Unmarshal(raw, &id) != nil {
		return ""
	}
	return id
}

// attrsWithGuards returns attrs with guardsAttr set to id.
func attrsWithGuards(attrs []byte, id string) ([]byte, error) {
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(attrs)) > 0 {
		if err := json.Unmarshal(attrs, &m); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(id)
	if err != nil {
		return nil, err
	}
	m[guardsAttr] = b
	return json.Marshal(m)
}

// resolveGuards checks a gate entry's --guards (an agent's name or SPIFFE ID) and fills
// the gate's class, role and zone from that agent where unset. It returns the agent's
// SPIFFE ID.
func (s *Server) resolveGuards(ctx context.Context, req *api.Entry) (string, error) {
	if req.Guards == "" {
		return "", nil
	}
	if req.Kind != "gate" {
		return "", errors.New("guards is for kind gate")
	}
	var agent store.Entry
	var err error
	if strings.HasPrefix(req.Guards, "spiffe://") {
		agent, err = s.cfg.Store.GetEntryBySPIFFEID(ctx, req.Guards)
	} else {
		agent, err = s.cfg.Store.GetEntry(ctx, req.Guards)
	}
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("guards: no agent entry %q (create the agent's entry first)", req.Guards)
	} else if err != nil {
		return "", err
	}
	if id, err := spiffeid.FromString(agent.SPIFFEID); err != nil || !strings.HasPrefix(id.Path(), "/agent/") {
		return "", fmt.Errorf("guards: %s is not an agent", agent.SPIFFEID)
	}
	if req.Class == "" {
		req.Class = agent.Class
	}
	if req.Class != agent.Class {
		return "", fmt.Errorf("class %s: a gate has the class of the agent it guards (%s), so its identity renews under the same attestation rules", req.Class, agent.Class)
	}
	if req.Role == "" {
		req.Role = "gate"
	}
	if req.Zone == "" {
		req.Zone = agent.Zone
	}
	return agent.SPIFFEID, nil
}

// guardedBy returns the agent a gate identity guards ("" for an agent's own identity or
// a gate registered without --guards).
func (s *Server) guardedBy(ctx context.Context, id spiffeid.ID) (string, error) {
	if !strings.HasPrefix(id.Path(), "/gate/") {
		return "", nil
	}
	e, err := s.cfg.Store.GetEntryBySPIFFEID(ctx, id.String())
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return guardsOf(e.Attrs), nil
}

// shipperMayRecord checks one shipped event against the shipping identity: gate_id is
// that identity, and a decision event is about the agent it stands for — the callee of
// an inbound or legacy decision, the caller of an outbound one — which is the shipping
// identity itself (a gate presenting its agent's SVID) or the agent its gate entry
// guards. guarded is guardedBy(shipper). It returns "" or why the event is refused.
func shipperMayRecord(ev *audit.Event, shipper spiffeid.ID, guarded string) string {
	if ev.GateID != shipper.String() {
		return fmt.Sprintf("gate_id %q is not the shipping identity %s", ev.GateID, shipper)
	}
	if ev.Kind != audit.KindDecision {
		return ""
	}
	about := ev.Callee
	if ev.Detail["mode"] == "outbound" { // gate.ModeOutbound, as the gate writes it
		about = ev.Caller
	}
	switch {
	case about == shipper.String():
		return ""
	case guarded != "" && about == guarded:
		return ""
	case strings.HasPrefix(shipper.Path(), "/gate/") && guarded == "":
		return fmt.Sprintf("%s guards no agent: register it with `warden entry create --kind gate --guards AGENT`", shipper)
	default:
		return fmt.Sprintf("the decision is about %q, not an agent %s stands for", about, shipper)
	}
}
