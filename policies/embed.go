// Package policies embeds Warden's default Cedar policy bundle (schema, policies, rate
// limits, exceptions) so that commands such as `warden demo` can load it with
// policy.LoadFS without a checkout beside the binary.
package policies

import "embed"

// FS holds the default bundle in the layout policy.LoadFS reads.
//
//go:embed schema.cedarschema *.cedar ratelimits.yaml exceptions
var FS embed.FS
