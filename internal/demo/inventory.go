package demo

import (
	"fmt"
	"time"

	"github.com/warden-a2a/warden/examples/supplychain"
	"github.com/warden-a2a/warden/internal/inventory"
	"github.com/warden-a2a/warden/internal/inventory/policyauthz"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/policies"
)

// printInventory opens the story where a rollout starts (issue 8): the catalog of who
// talks to whom, checked against the default policies, and the top of its report.
func (e *env) printInventory() {
	c, err := inventory.Parse(e.show(e.CatalogFile()), supplychain.Catalog)
	if err != nil {
		fmt.Fprintf(e.out, "inventory: %v\n\n", err)
		return
	}
	eng, err := policy.LoadFS(policies.FS, policy.Options{})
	if err != nil {
		fmt.Fprintf(e.out, "inventory: policies: %v\n\n", err)
		return
	}
	az := policyauthz.New(eng, c.TrustDomain, time.Now)
	r := inventory.Analyze(c, inventory.Options{Authorizer: az, Engine: az.String()})
	fmt.Fprintf(e.out, "%s\n  $ %s   # the whole report\n\n",
		inventory.TopOfReport(r, 8), e.Procs.Show("inventory", "report", e.CatalogFile(), "--policies", e.PoliciesDir()))
}
