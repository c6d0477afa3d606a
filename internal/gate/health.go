package gate

import (
	"fmt"
	"time"
)

// Ready reports whether the gate can decide now: nil, or the first reason it cannot.
// Ready means it holds an SVID that has not expired and, inbound and legacy, a loaded
// policy and a verified trust state younger than the zone's max_staleness (past it,
// reads still pass but every other action is refused: not ready). warden gate serves it
// as /readyz on the metrics listener.
func (g *Gate) Ready() error {
	now := g.cfg.Now()
	svid, err := g.cfg.SVID.GetX509SVID()
	if err != nil || svid == nil || len(svid.Certificates) == 0 {
		return fmt.Errorf("no SVID: %v", err)
	}
	if na := svid.Certificates[0].NotAfter; !now.Before(na) {
		return fmt.Errorf("the gate's SVID (%s) expired at %s", svid.ID, na.UTC().Format(time.RFC3339))
	}
	if g.cfg.Mode == ModeOutbound {
		return nil
	}
	if g.cfg.Policy.Engine() == nil {
		return fmt.Errorf("no policy loaded")
	}
	doc, age := g.cfg.Trust.Current()
	if doc == nil {
		return fmt.Errorf("no verified trust state yet")
	}
	if limit := maxStaleness(doc, g.cfg.Zone, g.cfg.MaxStaleness); age > limit {
		return fmt.Errorf("trust state version %d last confirmed %s ago, over max_staleness %s", doc.Version, age.Round(time.Second), limit)
	}
	return nil
}
