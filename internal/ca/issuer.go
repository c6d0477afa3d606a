package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/store"
)

// Issuer mints X509-SVIDs and records each one (serial, SPIFFE ID, not-after) in the
// store before handing it out, so no certificate exists that the control plane cannot
// account for.
type Issuer struct {
	CA    *CA
	Store store.Store
	TTL   time.Duration // lifetime of issued SVIDs; 0 means DefaultTTL
}

// Issue mints and records an X509-SVID for pub. kind is recorded as is ("enroll", "renew",
// "server", "admin").
func (i *Issuer) Issue(ctx context.Context, pub crypto.PublicKey, id spiffeid.ID, entryName, kind string) (*x509.Certificate, error) {
	return i.IssueWith(ctx, X509Request{PublicKey: pub, ID: id, TTL: i.TTL}, entryName, kind)
}

// IssueWith is Issue with the full request (DNS and IP SANs, a TTL of its own).
func (i *Issuer) IssueWith(ctx context.Context, req X509Request, entryName, kind string) (*x509.Certificate, error) {
	cert, err := i.CA.SignX509SVID(req)
	if err != nil {
		return nil, err
	}
	rec := store.SVID{
		Serial:    SerialHex(cert),
		SPIFFEID:  req.ID.String(),
		EntryName: entryName,
		Kind:      kind,
		NotBefore: cert.NotBefore,
		NotAfter:  cert.NotAfter,
		IssuedAt:  i.CA.now(),
	}
	if err := i.Store.RecordSVID(ctx, rec); err != nil {
		return nil, fmt.Errorf("ca: record svid: %w", err)
	}
	return cert, nil
}
