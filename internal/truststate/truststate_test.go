package truststate_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/truststate"
)

var td = spiffeid.RequireTrustDomainFromString("supplychain.example")

func newCA(t testing.TB) *ca.CA {
	c, err := ca.LoadOrCreate(ca.Config{TrustDomain: td, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func signer(t testing.TB, c *ca.CA, path string) (*ecdsa.PrivateKey, []*x509.Certificate) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert, err := c.SignX509SVID(ca.X509Request{PublicKey: key.Public(), ID: spiffeid.RequireFromPath(td, path)})
	if err != nil {
		t.Fatal(err)
	}
	return key, append([]*x509.Certificate{cert}, c.Intermediates()...)
}

func sampleDoc() *truststate.Document {
	return &truststate.Document{
		TrustDomain: td.Name(), Version: 7, IssuedAt: time.Now().UTC().Truncate(time.Millisecond),
		RevokedIDs:   map[string]truststate.Revocation{"spiffe://supplychain.example/agent/procurement": {Reason: "stolen", At: time.Now().UTC()}},
		Agents:       map[string]truststate.AgentState{"spiffe://supplychain.example/agent/edge": {Status: truststate.StatusQuarantined, Reason: "drift"}},
		KillSwitches: []truststate.KillSwitch{{Scope: "action", Value: "payment.release", Reason: "incident"}},
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	c := newCA(t)
	key, chain := signer(t, c, "/warden/server")
	signed, err := truststate.Sign(sampleDoc(), key, chain)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := truststate.Verify(signed, c.X509Bundle(), td, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if doc.Version != 7 || doc.Status("spiffe://supplychain.example/agent/edge") != truststate.StatusQuarantined {
		t.Errorf("doc = %+v", doc)
	}
	if _, ok := doc.IsRevoked("spiffe://supplychain.example/agent/procurement", ""); !ok {
		t.Error("revocation lost")
	}
}

// TestEveryByteMatters: changing any one byte of a signed document makes it fail.
func TestEveryByteMatters(t *testing.T) {
	c := newCA(t)
	key, chain := signer(t, c, "/warden/server")
	signed, _ := truststate.Sign(sampleDoc(), key, chain)
	now := time.Now()
	for i := range signed {
		mod := bytes.Clone(signed)
		mod[i] ^= 0x01
		if mod[i] == '.' || signed[i] == '.' {
			mod[i] ^= 0x03
		}
		if _, err := truststate.Verify(mod, c.X509Bundle(), td, now); err == nil {
			t.Fatalf("byte %d changed (%q -> %q) and the document still verified", i, signed[i], mod[i])
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	c := newCA(t)
	other := newCA(t) // same trust domain name, different keys: an impostor control plane
	key, chain := signer(t, c, "/warden/server")
	agentKey, agentChain := signer(t, c, "/agent/procurement")
	impKey, impChain := signer(t, other, "/warden/server")
	good, _ := truststate.Sign(sampleDoc(), key, chain)
	byAgent, _ := truststate.Sign(sampleDoc(), agentKey, agentChain)
	byImpostor, _ := truststate.Sign(sampleDoc(), impKey, impChain)
	wrongTD := sampleDoc()
	wrongTD.TrustDomain = "other.example"
	otherDomain, _ := truststate.Sign(wrongTD, key, chain)
	parts := strings.Split(string(good), ".")
	cases := map[string][]byte{
		"signed-by-an-agent":            byAgent,
		"signed-by-another-ca":          byImpostor,
		"document-for-another-domain":   otherDomain,
		"not-compact":                   []byte("abc"),
		"signature-stripped":            []byte(parts[0] + "." + parts[1] + "."),
		"payload-swapped":               []byte(parts[0] + "." + strings.Split(string(byAgent), ".")[1] + "." + parts[2]),
		"oversized":                     bytes.Repeat([]byte("a"), truststate.MaxSize+1),
		"expired-signer-at-verify-time": good, // checked with a time after the signer expired
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			now := time.Now()
			if name == "expired-signer-at-verify-time" {
				now = now.Add(25 * time.Hour)
			}
			if _, err := truststate.Verify(in, c.X509Bundle(), td, now); err == nil {
				t.Error("verified")
			}
		})
	}
}

func TestFollowerRefusesRollback(t *testing.T) {
	c := newCA(t)
	key, chain := signer(t, c, "/warden/server")
	f := truststate.NewFollower(truststate.FollowerConfig{Bundle: c.X509Bundle(), TrustDomain: td})
	d := sampleDoc()
	v7, _ := truststate.Sign(d, key, chain)
	d.Version = 6
	v6, _ := truststate.Sign(d, key, chain)
	if _, err := f.Accept(v7); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Accept(v6); !errors.Is(err, truststate.ErrRollback) {
		t.Fatalf("older version: err = %v", err)
	}
	if cur, _ := f.Current(); cur.Version != 7 {
		t.Errorf("current version %d after a rollback attempt", cur.Version)
	}
}

func TestReadEvents(t *testing.T) {
	in := ": keep-alive\n\nevent: trust-state\nid: 3\ndata: abc\n\nevent: other\ndata: x\ndata: y\n\n"
	var got []truststate.Event
	err := truststate.ReadEvents(strings.NewReader(in), func(e truststate.Event) error { got = append(got, e); return nil })
	if err == nil {
		t.Error("end of stream not reported")
	}
	if len(got) != 2 || got[0] != (truststate.Event{Type: "trust-state", ID: "3", Data: "abc"}) || got[1].Data != "x\ny" {
		t.Errorf("events = %+v", got)
	}
}

func FuzzReadEvents(f *testing.F) {
	f.Add([]byte("event: trust-state\nid: 3\ndata: abc\n\n"))
	f.Add([]byte(": c\n\ndata\n\ndata:\ndata: x\n\n"))
	f.Add([]byte("id\nevent:\n\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		_ = truststate.ReadEvents(bytes.NewReader(in), func(e truststate.Event) error {
			if len(e.Data) > len(in) {
				t.Fatalf("event data longer than the input")
			}
			return nil
		})
	})
}

func FuzzVerify(f *testing.F) {
	c := newCA(f)
	key, chain := signer(f, c, "/warden/server")
	good, _ := truststate.Sign(sampleDoc(), key, chain)
	f.Add(good)
	f.Add([]byte("a.b.c"))
	f.Add([]byte("eyJhbGciOiJub25lIn0.e30."))
	bundle := c.X509Bundle()
	now := time.Now()
	f.Fuzz(func(t *testing.T, in []byte) {
		doc, err := truststate.Verify(in, bundle, td, now)
		if err == nil && !bytes.Equal(in, good) {
			// Only documents signed by the control plane verify; the fuzzer cannot sign.
			t.Fatalf("forged document verified: version %d", doc.Version)
		}
	})
}
