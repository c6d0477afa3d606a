package ca

import "crypto/ecdsa"

// IntermediateKeyForBenchmark exposes the signing key to the baseline benchmark only.
func (c *CA) IntermediateKeyForBenchmark() *ecdsa.PrivateKey { return c.cur.Load().key }
