// Package supplychain embeds the supply-chain example that `warden demo` plays: the
// workflow catalog (catalog.yaml, docs/catalog.md), so the binary runs the story without
// a checkout beside it.
package supplychain

import _ "embed"

// Catalog is examples/supplychain/catalog.yaml.
//
//go:embed catalog.yaml
var Catalog []byte

// CatalogFile is the name findings and reports cite for Catalog.
const CatalogFile = "examples/supplychain/catalog.yaml"
