# Rego equivalent of the default Warden Cedar bundle (policies/*.cedar plus the
# exceptions and the trust-state checks made before Cedar), used only as the
# benchmark baseline. Decision: allow plus the ids of the determining rules.
package warden

home := "supplychain.example"

reads := {"inventory_feed.read", "purchase_order.read", "vendor_record.read", "shipment.status", "customs_form.read", "invoice.read"}

spend := {"purchase_order.create", "purchase_order.approve", "invoice.post", "payment.release"}

role_permit := {
	"forecasting": "forecasting-permits",
	"procurement": "procurement-permits",
	"vendor": "vendor-portal-permits",
	"shipping": "shipping-permits",
	"compliance": "compliance-permits",
	"payments": "payments-permits",
	"edge": "edge-permits",
}

role_actions := {
	"forecasting": {"inventory_feed.read", "purchase_order.read", "forecast.publish"},
	"procurement": {"purchase_order.create", "purchase_order.read", "purchase_order.approve", "vendor_record.read", "inventory_feed.read", "forecast.publish"},
	"vendor": {"purchase_order.read", "purchase_order.acknowledge", "invoice.submit", "invoice.read", "vendor_record.read", "vendor_record.update"},
	"shipping": {"shipment.route", "shipment.reroute", "shipment.status", "purchase_order.read", "vendor_record.read", "customs_form.read"},
	"compliance": {"customs_form.read", "customs_form.validate", "invoice.read", "shipment.status", "purchase_order.read"},
	"payments": {"invoice.read", "invoice.post", "payment.release"},
	"edge": {"inventory_feed.update", "inventory_feed.read"},
}

carrier_grants := {"shipment.status", "shipment.pickup_confirm"}

exceptions := [
	{"id": "EXC-2026-041", "principal": "spiffe://supplychain.example/agent/logistics", "action": "vendor_record.update", "type": "VendorRecord", "rid": "V-ACME", "waives": {"shipping-cannot-modify-vendor-records"}, "expires": 1801353600},
	{"id": "EXC-2026-007", "principal": "spiffe://supplychain.example/agent/demand-planner", "action": "customs_form.read", "type": "CustomsForm", "rid": "", "waives": set(), "expires": 1782864000},
]

p := input.principal

ctx := input.context

res := input.resource

zone_state := object.get(input.trust.zone_states, p.zone, "healthy")

agent_status := object.get(input.trust.agent_status, p.spiffe_id, "active")

responder if {
	some r in input.trust.responders
	r == p.spiffe_id
}

responder if {
	some r in input.trust.responders
	r == p.name
}

approvals := count({a | some a in ctx.approvers; a != ""; a != p.spiffe_id; a != p.name})

tier := "none" if ctx.attestation.tier == ""

else := ctx.attestation.tier

# --- checks made before policy: suspension and kill switches ---

killed contains sprintf("kill-switch:%s:%s", [k.scope, k.value]) if {
	some k in input.trust.kill_switches
	kill_matches(k)
}

kill_matches(k) if { k.scope == "action"; k.value in {"*", input.action} }

kill_matches(k) if { k.scope == "workflow"; k.value in {"*", input.workflow} }

kill_matches(k) if { k.scope == "agent"; k.value in {"*", p.spiffe_id, p.name} }

kill_matches(k) if { k.scope == "zone"; k.value in {"*", p.zone} }

kill_matches(k) if {
	not k.scope in {"action", "workflow", "agent", "zone"}
}

# --- exceptions ---

active_exceptions contains x if {
	some x in exceptions
	input.now < x.expires
	x.principal == p.spiffe_id
	x.action == input.action
	x.type == res.type
	x.rid in {"", res.id}
}

waived contains w if {
	some x in active_exceptions
	some w in x.waives
}

# --- permits ---

permits contains role_permit[p.role] if {
	p.trust_domain == home
	not p.partner
	input.action in role_actions[p.role]
}

permits contains "carrier-partner-permits" if {
	p.partner
	p.trust_domain == "partner.example"
	p.role == "carrier"
	input.action in carrier_grants
	res.type == "Shipment"
}

permits contains concat("", ["exception:", x.id]) if {
	some x in active_exceptions
}

# --- forbids ---

foreign if p.partner

foreign if p.trust_domain != home

raw_forbids contains "partner-only-granted-actions" if {
	foreign
	not partner_granted
}

partner_granted if {
	p.trust_domain == "partner.example"
	input.action in carrier_grants
}

raw_forbids contains "partner-no-restricted-data" if {
	p.trust_domain != home
	ctx.data_sensitivity == "restricted"
}

raw_forbids contains "forecasting-cannot-approve-spend" if {
	p.role == "forecasting"
	input.action in spend
}

raw_forbids contains "shipping-cannot-modify-vendor-records" if {
	p.role == "shipping"
	input.action == "vendor_record.update"
}

raw_forbids contains "compliance-cannot-post-financials" if {
	p.role == "compliance"
	input.action in {"invoice.post", "payment.release"}
}

raw_forbids contains "payment-release-needs-attestation" if {
	input.action == "payment.release"
	not fresh_affirming
}

fresh_affirming if {
	tier == "affirming"
	ctx.attestation.age_s <= 300
}

raw_forbids contains "payment-release-needs-two-approvals" if {
	input.action == "payment.release"
	large_payment
	approvals < 2
}

large_payment if ctx.amount > 10000

large_payment if res.amount > 10000

raw_forbids contains "large-order-approval-needs-approval" if {
	input.action == "purchase_order.approve"
	res.amount > 50000
	approvals < 1
}

raw_forbids contains "closed-order-is-final" if {
	res.type == "Order"
	res.status == "closed"
	input.action != "purchase_order.read"
}

raw_forbids contains "shipment-status-not-from-quarantined-zone" if {
	input.action == "shipment.status"
	zone_state == "quarantined"
}

raw_forbids contains "shipment-status-incident-responders-only" if {
	input.action == "shipment.status"
	input.trust.incident_mode
	not responder
}

raw_forbids contains "offline-zone-denied" if zone_state == "offline"

raw_forbids contains "quarantined-agent-reads-only" if {
	agent_status == "quarantined"
	not input.action in reads
}

raw_forbids contains "contraindicated-attestation-denied" if {
	tier == "contraindicated"
	not input.action in reads
}

raw_forbids contains "spend-needs-transactional-class" if {
	input.action in spend
	not p.class in {"transactional", "regulated"}
}

forbids := raw_forbids - waived

# --- decision ---

decision := {"allow": false, "code": "agent_suspended", "policies": ["trust-state:agent-suspended"]} if {
	agent_status == "suspended"
} else := {"allow": false, "code": "kill_switch", "policies": [k]} if {
	some k in killed
} else := {"allow": false, "code": "policy_deny", "policies": sort(forbids)} if {
	count(forbids) > 0
} else := {"allow": true, "code": "policy_allow", "policies": sort(permits)} if {
	count(permits) > 0
} else := {"allow": false, "code": "default_deny", "policies": []}
