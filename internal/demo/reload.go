package demo

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/warden-a2a/warden/internal/proc"
)

// gateFollowsRotation: vendor-portal's enroll --watch renews (the operator's challenge
// makes it renew now) and replaces the SVID files; its inbound gate, which reads those
// files, presents the new SVID on its next handshake without a restart (docs/gate.md,
// "Identity").
func gateFollowsRotation(ctx context.Context, g *gateEnv) {
	s := Step{Name: "vendor-portal's gate presents the SVID its enroll --watch just renewed (no restart)", Kind: "workflow", Expected: "allow"}
	before, after, cmd, err := g.renewNow(ctx, "vendor-portal", "rotation under a running gate")
	s.Command = commands(cmd, "openssl s_client -connect "+g.inbound.Addr+" -cert $DIR/agents/procurement/svid.pem -key $DIR/agents/procurement/svid_key.pem </dev/null 2>/dev/null | openssl x509 -noout -serial")
	var got string
	if err == nil {
		err = proc.WaitFor(ctx, 30*time.Second, "the gate to present serial "+after, func() (bool, error) {
			got, err = g.presentedSerial(ctx, g.inbound.Addr)
			return err == nil && got == after, nil
		})
	}
	s.Observed, s.Reason, _ = outcome(err)
	if err == nil {
		s.Reason = fmt.Sprintf("serial %s -> %s in %s, presented by the gate (pid %d, not restarted) on its next handshake", before, after, g.show(g.agents["vendor-portal"].Dir), g.inbound.Proc.Pid())
	} else if got != "" {
		s.Reason += "; the gate presents " + got
	}
	g.record(s)
}

// presentedSerial is the serial (hex) of the certificate the gate at addr presents, as
// procurement sees it in a handshake.
func (g *gateEnv) presentedSerial(ctx context.Context, addr string) (string, error) {
	a, err := g.agent("procurement")
	if err != nil {
		return "", err
	}
	conf, err := a.MTLS()
	if err != nil {
		return "", err
	}
	d := tls.Dialer{Config: conf}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}

// gateReload: SIGHUP makes vendor-portal's gate re-read gate.yaml, its policy and its SVID
// files; it keeps serving, and a purchase order goes through both gates afterwards.
func gateReload(ctx context.Context, g *gateEnv) {
	s := Step{Name: "kill -HUP vendor-portal's gate: it reloads and keeps serving", Kind: "workflow", Expected: "allow",
		Command: fmt.Sprintf("kill -HUP %d   # warden gate --config %s", g.inbound.Proc.Pid(), g.show(g.inbound.Config))}
	const reloaded = "gate: reloaded"
	n := strings.Count(g.inbound.Proc.Log(), reloaded)
	err := g.inbound.Proc.Signal(syscall.SIGHUP)
	if err == nil {
		err = g.inbound.Proc.WaitFor(ctx, 30*time.Second, "the gate to log "+reloaded, func() (bool, error) {
			return strings.Count(g.inbound.Proc.Log(), reloaded) > n, nil
		})
	}
	var detail string
	if err == nil {
		client, ids, cerr := OutboundClient(ctx, g.outbound.Addr)
		if err = cerr; err == nil {
			msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("Purchase order PO-1002 after the reload"))
			msg.Metadata = map[string]any{"warden.action": "purchase_order.create", "warden.resource": "Order/PO-1002", "warden.amount": 1200, "warden.currency": "EUR", "warden.workflow": "po-1002"}
			_, err = client.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
			s.DecisionID = ids.Last()
			_ = client.Destroy()
			detail = "PO-1002 went through both gates after the reload"
		}
	}
	s.Observed, s.Reason, _ = outcome(err)
	if err == nil {
		s.Reason = fmt.Sprintf("%s logged %q and kept serving; %s", g.inbound.Proc.Name, reloaded, detail)
	}
	g.record(s)
}
