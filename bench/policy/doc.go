// Package policybench compares Warden's Cedar decision point with OPA evaluating
// an equivalent Rego policy (warden.rego) on the same inputs. It lives in the
// separate bench module so OPA never enters the product's go.mod.
package policybench
