package gate_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/gate"
)

// TestHandshakeRefusalsAudited: an impersonator's self-signed certificate and a client
// with no certificate are refused at the TLS handshake, and each refusal is an audit event
// with a decision id, its reason, the certificate's hash and the identity it claimed
// (kept out of Peer: it was never proven). A real SVID still gets through.
func TestHandshakeRefusalsAudited(t *testing.T) {
	e := newEnv(t)
	ag := startAgent(t)
	g, _ := e.inbound(ag.url, nil)
	addr := startGate(t, g, "tcp")

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	claimed := agentID("procurement")
	tpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "procurement"}, URIs: []*url.URL{claimed.URL()},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	sum := sha256.Sum256(der)

	for _, tc := range []struct {
		name   string
		certs  []tls.Certificate
		reason string
		hash   string
		claims string
	}{
		{"self-signed impersonation", []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, gate.ReasonUntrustedCert, hex.EncodeToString(sum[:]), "claims " + claimed.String()},
		{"no client certificate", nil, gate.ReasonNoPeerCert, "", "sent no certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", addr, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: tc.certs})
			if err == nil {
				// TLS 1.3: the client learns of the refusal at its first read.
				_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if err == nil {
				t.Fatal("the handshake was not refused")
			}
			ev := e.events.last()
			if ev.Reason != tc.reason || !strings.HasPrefix(ev.DecisionID, "dec_") || ev.Allow {
				t.Fatalf("event %+v, want a refusal %s with a decision id", ev, tc.reason)
			}
			if ev.Peer != "" || ev.CallerCertSHA256 != tc.hash || !strings.Contains(ev.Message, tc.claims) || !strings.Contains(ev.Message, "127.0.0.1:") {
				t.Errorf("event peer %q cert %q message %q", ev.Peer, ev.CallerCertSHA256, ev.Message)
			}
		})
	}

	c := e.caller(t, addr, e.svid("/agent/procurement"))
	body := rpcBody("purchase_order.read", "Order/PO-1")
	in := poIntent()
	in.Action = "purchase_order.read"
	if status, _ := c.do(body, c.sign(in, body)); status != 200 {
		t.Fatalf("a real SVID: status %d (event %+v)", status, e.events.last())
	}
}
