package cli

import (
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

const sampleGateYAML = `mode: inbound
listen: 0.0.0.0:8443
self: spiffe://supplychain.example/agent/vendor-portal
svid_dir: /var/lib/warden/gate
server: https://warden.example:8443
upstream: http://127.0.0.1:9000
zone: cloud
max_staleness: 5m
policy:
  dir: policies
peers:
  - spiffe_id: spiffe://supplychain.example/agent/procurement
    role: procurement
    class: transactional
    zone: cloud
replay:
  capacity: 1000000
limits:
  max_body: 1048576
  read_header_timeout: 5s
card:
  name: vendor-portal
  url: https://vendor-portal.example:8443
`

func TestParseGateFile(t *testing.T) {
	f, err := parseGateFile([]byte(sampleGateYAML))
	if err != nil {
		t.Fatal(err)
	}
	if f.Mode != "inbound" || len(f.Peers) != 1 || f.Peers[0].Role != "procurement" || f.MaxStaleness.Minutes() != 5 {
		t.Errorf("parsed %+v", f)
	}
	withApprovals := sampleGateYAML + "approvals:\n  control_plane: true\n  required:\n    payment-release-needs-two-approvals: 2\n  ttl: 30m\n"
	if f, err := parseGateFile([]byte(withApprovals)); err != nil || !f.Approvals.ControlPlane || f.Approvals.Required["payment-release-needs-two-approvals"] != 2 {
		t.Errorf("approvals section: %+v %v", f, err)
	}
	for _, tc := range []struct{ name, edit, want string }{
		{"unknown key is an error", "zone: cloud", "zoen: cloud"},
		{"unknown mode", "mode: inbound", "mode: sideways"},
		{"self not a SPIFFE ID", "self: spiffe://supplychain.example/agent/vendor-portal", "self: https://x"},
		{"peer without role", "    role: procurement\n", ""},
		{"legacy ttl over 60s", "zone: cloud", "zone: cloud\nlegacy:\n  ttl: 2m"},
		{"approvals on the control plane without a server", "server: https://warden.example:8443\n", "approvals:\n  control_plane: true\n"},
		{"approvals needing no approver", "zone: cloud", "zone: cloud\napprovals:\n  control_plane: true\n  required: {p: 0}"},
		{"approvals ttl over a day", "zone: cloud", "zone: cloud\napprovals:\n  control_plane: true\n  ttl: 25h"},
		{"unknown identity source", "zone: cloud", "zone: cloud\nidentity:\n  source: workload-api"},
		{"tpm with source files", "zone: cloud", "zone: cloud\nidentity:\n  tpm: {device: sim}"},
		{"renew without a server", "server: https://warden.example:8443\n", "identity:\n  source: renew\n"},
		{"renew without tpm.device", "zone: cloud", "zone: cloud\nidentity:\n  source: renew\n  tpm: {seed: 3}"},
		{"unknown identity key", "zone: cloud", "zone: cloud\nidentity:\n  source: files\n  renew: true"},
		{"unknown tracing key", "zone: cloud", "zone: cloud\ntracing:\n  endpoint: http://x"},
		{"card from upstream with a name", "  name: vendor-portal\n", "  source: upstream\n  name: vendor-portal\n"},
		{"card from upstream on http", "  url: https://vendor-portal.example:8443\n", "  source: upstream\n  url: http://vendor-portal.example:8443\n"},
		{"card from upstream with a path", "  url: https://vendor-portal.example:8443\n", "  source: upstream\n  url: https://vendor-portal.example:8443/a2a\n"},
		{"unknown card source", "  name: vendor-portal\n", "  source: registry\n"},
		{"card binding unknown", "  name: vendor-portal\n", "  name: vendor-portal\n  binding: GRPC\n"},
		{"card interface path relative", "  name: vendor-portal\n", "  name: vendor-portal\n  interfaces: [{binding: JSONRPC, path: rest}]\n"},
	} {
		bad := strings.Replace(sampleGateYAML, tc.edit, tc.want, 1)
		if _, err := parseGateFile([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// TestGateCardBlock: the card block's two sources build what the gate serves.
func TestGateCardBlock(t *testing.T) {
	up := strings.Replace(sampleGateYAML, "  name: vendor-portal\n  url: https://vendor-portal.example:8443\n",
		"  source: upstream\n  url: https://vendor-portal.example:8443\n  refresh: 30s\n", 1)
	f, err := parseGateFile([]byte(up))
	if err != nil {
		t.Fatal(err)
	}
	if card, cu := f.Card.build(); card != nil || cu == nil || cu.PublicURL != "https://vendor-portal.example:8443" || cu.Refresh.Seconds() != 30 {
		t.Errorf("source upstream built %+v %+v", card, cu)
	}
	two := strings.Replace(sampleGateYAML, "  name: vendor-portal\n", "  name: vendor-portal\n  interfaces:\n    - {binding: JSONRPC, path: /}\n    - {binding: HTTP+JSON, path: /rest}\n", 1)
	f, err = parseGateFile([]byte(two))
	if err != nil {
		t.Fatal(err)
	}
	card, _ := f.Card.build()
	if len(card.SupportedInterfaces) != 2 || card.SupportedInterfaces[1].URL != "https://vendor-portal.example:8443/rest" || card.SupportedInterfaces[1].ProtocolBinding != "HTTP+JSON" {
		t.Errorf("interfaces %+v", card.SupportedInterfaces)
	}
}

// TestGateIdentityRules: which SVID a gate of each mode may present, and that renewal is
// only ever for the gate's own /gate/ identity (never in outbound mode).
func TestGateIdentityRules(t *testing.T) {
	renewOut := strings.Replace(sampleGateYAML, "mode: inbound", "mode: outbound", 1) + "identity:\n  source: renew\n"
	if _, err := parseGateFile([]byte(renewOut)); err == nil || !strings.Contains(err.Error(), "outbound") {
		t.Errorf("identity.source renew in outbound mode: %v", err)
	}
	if f, err := parseGateFile([]byte(sampleGateYAML + "identity:\n  source: renew\n  tpm: {device: sim, seed: 4, binary: /usr/bin/warden}\n")); err != nil ||
		f.Identity.source() != identityRenew || f.Identity.TPM.Seed != 4 {
		t.Errorf("renew with a TPM: %+v %v", f, err)
	}
	if f, _ := parseGateFile([]byte(sampleGateYAML)); f.Identity.source() != identityFiles {
		t.Errorf("default identity source %q, want files (a gate never renews unless told to)", f.Identity.source())
	}
	self := spiffeid.RequireFromString("spiffe://supplychain.example/agent/vendor-portal")
	for _, tc := range []struct {
		mode, id string
		ok       bool
	}{
		{"inbound", "spiffe://supplychain.example/agent/vendor-portal", true},
		{"inbound", "spiffe://supplychain.example/gate/vendor-portal-gate", true},
		{"legacy", "spiffe://supplychain.example/gate/erp-gate", true},
		{"inbound", "spiffe://supplychain.example/agent/procurement", false},
		{"inbound", "spiffe://partner.example/gate/vendor-portal-gate", false},
		{"outbound", "spiffe://supplychain.example/agent/vendor-portal", true},
		{"outbound", "spiffe://supplychain.example/gate/vendor-portal-gate", false},
	} {
		err := checkGateID(tc.mode, self, spiffeid.RequireFromString(tc.id), "/svid")
		if (err == nil) != tc.ok {
			t.Errorf("%s gate presenting %s: %v", tc.mode, tc.id, err)
		}
	}
}

func FuzzParseGateFile(f *testing.F) {
	f.Add([]byte(sampleGateYAML))
	f.Add([]byte("mode: outbound\n"))
	f.Add([]byte("{}"))
	f.Add([]byte("peers: [{spiffe_id: 1}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := parseGateFile(b)
		if err == nil && (cfg.Mode == "" || cfg.Self == "") {
			t.Fatalf("accepted a config without mode or self: %q", b)
		}
	})
}
