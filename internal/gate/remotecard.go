package gate

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// ReasonCardUnverified: outbound, the remote agent card did not verify (unsigned, bad
// signature, or signed by another identity than the one this gate calls).
const ReasonCardUnverified = "card_unverified"

// HeaderCardSigner names, on a card served by an outbound gate, the SPIFFE ID whose
// signature the gate verified.
const HeaderCardSigner = "Warden-Card-Signer"

// serveRemoteCard (outbound): fetches the remote agent's card over mTLS, verifies its
// signature (VerifyCard) for the identity this gate calls — UpstreamID, else Audience —
// and serves it to the local agent with every interface URL pointed at this gate (same
// path), so an unmodified A2A client that resolves the card sends its calls through the
// gate. The rewritten card carries no signature (the local agent reaches its own gate
// over an authenticated local channel); Warden-Card-Signer says whose signature held. A
// card that does not verify is never served.
func (g *Gate) serveRemoteCard(w http.ResponseWriter, r *http.Request) {
	decisionID := newDecisionID()
	refuse := func(status int, reason, msg string) {
		_ = g.cfg.Audit.Record(r.Context(), Event{DecisionID: decisionID, Time: g.cfg.Now(), Gate: g.cfg.Self.String(),
			Mode: ModeOutbound, Peer: g.cfg.Audience, Method: "agent-card", Reason: reason, Message: msg})
		writeRefusal(w, nil, Refusal{Status: status, Reason: reason, Message: msg, DecisionID: decisionID})
	}
	if why := g.localCallerRefusal(r); why != "" {
		refuse(http.StatusUnauthorized, ReasonLocalAuth, why)
		return
	}
	svid, err := g.cfg.SVID.GetX509SVID()
	if err != nil {
		refuse(http.StatusServiceUnavailable, ReasonSigning, "no SVID")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	ctx = context.WithValue(ctx, svidKey{}, svid)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.cfg.Upstream+cardPath, nil)
	res, err := g.proxy.Transport.RoundTrip(req)
	if err != nil {
		refuse(http.StatusBadGateway, ReasonUpstream, "the remote gate did not answer")
		return
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, MaxCardSize+1))
	if err != nil || res.StatusCode != http.StatusOK {
		refuse(http.StatusBadGateway, ReasonUpstream, "no agent card")
		return
	}
	signer := g.cfg.UpstreamID
	if signer.IsZero() {
		signer, _ = spiffeid.FromString(g.cfg.Audience)
	}
	card, err := VerifyCard(raw, g.cfg.Bundle, signer)
	if err != nil {
		refuse(http.StatusBadGateway, ReasonCardUnverified, err.Error())
		return
	}
	for _, iface := range card.SupportedInterfaces {
		u, err := url.Parse(iface.URL)
		if err != nil {
			continue
		}
		iface.URL = (&url.URL{Scheme: "http", Host: r.Host, Path: u.Path}).String()
	}
	card.Signatures = nil
	b, err := json.Marshal(card)
	if err != nil {
		refuse(http.StatusBadGateway, ReasonCardUnverified, "card could not be re-encoded")
		return
	}
	_ = g.cfg.Audit.Record(r.Context(), Event{DecisionID: decisionID, Time: g.cfg.Now(), Gate: g.cfg.Self.String(),
		Mode: ModeOutbound, Peer: g.cfg.Audience, Method: "agent-card", Allow: true, Reason: "card_verified"})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderCardSigner, signer.String())
	_, _ = w.Write(b)
}
