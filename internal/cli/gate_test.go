package cli

import (
	"strings"
	"testing"
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
	} {
		bad := strings.Replace(sampleGateYAML, tc.edit, tc.want, 1)
		if _, err := parseGateFile([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", tc.name)
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
