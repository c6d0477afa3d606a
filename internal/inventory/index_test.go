package inventory_test

import (
	"testing"

	"github.com/warden-a2a/warden/internal/inventory"
)

func TestIsDeclared(t *testing.T) {
	x, err := inventory.LoadIndex(shipped)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name             string
		src, dst, action string
		want             bool
	}{
		{"declared-by-name", "procurement", "vendor-portal", "purchase_order.create", true},
		{"declared-by-spiffe-id", "spiffe://supplychain.example/agent/procurement", "spiffe://supplychain.example/agent/vendor-portal", "purchase_order.create", true},
		{"partner-by-its-own-trust-domain", "spiffe://partner.example/agent/partner-carrier", "logistics", "shipment.status", true},
		{"partner-id-in-our-trust-domain-is-not-the-partner", "spiffe://supplychain.example/agent/partner-carrier", "logistics", "shipment.status", false},
		{"declared-action-other-destination", "procurement", "payment-release", "purchase_order.create", false},
		{"reversed-direction", "vendor-portal", "procurement", "purchase_order.create", false},
		{"undeclared-action", "logistics", "vendor-portal", "vendor_record.update", false},
		{"unknown-source", "spiffe://supplychain.example/agent/mallory", "vendor-portal", "purchase_order.create", false},
		{"prefix-is-not-a-match", "procurement", "vendor-portal", "purchase_order", false},
		{"case-matters", "Procurement", "vendor-portal", "purchase_order.create", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := x.IsDeclared(tc.src, tc.dst, tc.action); got != tc.want {
				t.Fatalf("IsDeclared(%q, %q, %q) = %v, want %v", tc.src, tc.dst, tc.action, got, tc.want)
			}
		})
	}
	in, ok := x.Declared("payment-release", "legacy-erp", "payment.release")
	if !ok || in.Classification != inventory.Regulated || in.Workflow != "procure-to-pay" {
		t.Fatalf("Declared: %+v %v", in, ok)
	}
	var nilIndex *inventory.Index
	if nilIndex.IsDeclared("procurement", "vendor-portal", "purchase_order.create") {
		t.Fatal("nil index declares paths")
	}
}
