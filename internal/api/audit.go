package api

import (
	"encoding/json"
	"time"
)

// Paths of the audit read API and the auditor credential.
const (
	// PathAuditSearch: GET, the admin or an auditor credential (docs/audit-events.md,
	// "Search"). Query parameters: from, to (RFC 3339), agent, action, decision, reason,
	// workflow, kind, limit (1..1000, default 100), before (a log index: page back),
	// proof (true: an inclusion proof per event, limit at most 100).
	PathAuditSearch = "/v1/audit/search"
	// PathAdminAuditors: POST, the admin credential: issue an auditor credential
	// (spiffe://TD/warden/auditor/NAME) for a CSR.
	PathAdminAuditors = "/v1/admin/auditors"
)

// Limits of an audit search.
const (
	MaxAuditSearchLimit      = 1000
	MaxAuditSearchProofLimit = 100
)

// AuditSearchResult is one event found: its log index and canonical bytes, and with
// proof=true its inclusion proof against Checkpoint of the answer.
type AuditSearchResult struct {
	Index int64           `json:"index"`
	ID    string          `json:"id"`
	Event json.RawMessage `json:"event"`           // canonical bytes, what the Merkle tree hashes
	Proof []string        `json:"proof,omitempty"` // RFC 6962 audit path, base64 hashes (tlog.RecordProof)
}

// AuditSearchResponse answers PathAuditSearch: the matching events, oldest first (the
// newest `limit` of them), the tree size and checkpoint the proofs are against (with the
// witnesses' cosignatures stored beside it), and the index to pass as `before` for the
// previous page (0: none).
type AuditSearchResponse struct {
	Events     []AuditSearchResult `json:"events"`
	TreeSize   int64               `json:"tree_size,omitempty"`
	Checkpoint string              `json:"checkpoint,omitempty"`
	Before     int64               `json:"before,omitempty"`
}

// AuditorRequest asks for an auditor credential: a read-only SVID for
// spiffe://TD/warden/auditor/NAME that may only search the audit log.
type AuditorRequest struct {
	Name   string `json:"name"`    // [a-z0-9-], 1..63
	CSR    []byte `json:"csr"`     // DER PKCS#10 for that SPIFFE ID, base64 in JSON
	TTLSec int    `json:"ttl_sec"` // lifetime, at most 24 h (default 8 h)
}

// AuditorResponse carries the issued credential.
type AuditorResponse struct {
	SPIFFEID     string    `json:"spiffe_id"`
	Certificates string    `json:"certificates"` // PEM: the SVID and its intermediate
	Bundle       string    `json:"bundle"`       // PEM: the trust domain's root
	ExpiresAt    time.Time `json:"expires_at"`
}
