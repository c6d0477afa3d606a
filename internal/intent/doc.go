// Package intent verifies signed intents: compact JWS (RFC 7515 section 7.1) whose
// payload is the RFC 8785 canonical JSON of the intent claims, signed with the key of
// the sender's X509-SVID (EdDSA, RFC 8037, or ES256, RFC 7518 section 3.4), bound to
// the HTTP body (bdy, SHA-256) and to the mTLS channel (cnf.x5t#S256, RFC 8705 section
// 3.1), kept from replay by a cache keyed by (iss, jti) until exp + skew.
//
// The format and the verification algorithm are specified in docs/intent-spec.md, whose
// test vectors the tests of this package read. Every refusal is an *Error carrying one
// of the Reason constants; ReasonOf extracts it.
//
// The signing half a workload calls is the public package sdk; Sign here is the
// primitive it and the CLI build on.
package intent
