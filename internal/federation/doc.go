// Package federation is Warden's side of SPIFFE federation (SPIFFE Federation standard,
// https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Federation.md): the
// parameters of a relationship with a foreign trust domain (§5.1: trust domain, bundle
// endpoint URL, endpoint profile, and for https_spiffe the endpoint's SPIFFE ID), fetching
// the foreign SPIFFE bundle over either profile (§5.2.1 https_web, §5.2.2 https_spiffe),
// checking it before anyone trusts it, and when to fetch it again (§4.1, the bundle's
// refresh hint, bounded).
//
// Why not go-spiffe's federation.FetchBundle: it reads the whole response body into
// memory with no bound and does not look at the status code, so a bundle endpoint that
// is compromised or misconfigured can make the control plane allocate without limit.
// Fetch does the same with go-spiffe's parts — tlsconfig for https_spiffe, the Web PKI
// for https_web, spiffebundle.Parse for the document — plus a size bound, a status check,
// a timeout and redirect checks (§5.2.1.4, §5.2.2.4). Its output is tested against
// go-spiffe's federation.NewHandler (the format SPIRE's bundle endpoint serves), and
// go-spiffe's FetchBundle is tested against Warden's endpoint.
package federation
