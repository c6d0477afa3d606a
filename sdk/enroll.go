package sdk

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/enroll"
)

// Files an enrolled agent keeps in its directory.
const (
	SVIDFile   = "svid.pem"     // leaf, then intermediates
	KeyFile    = "svid_key.pem" // PKCS#8, mode 0600
	BundleFile = "bundle.pem"   // X.509 authorities of the trust domain
)

// KeyType selects the workload key algorithm.
type KeyType string

// Supported workload keys.
const (
	KeyECDSAP256 KeyType = "ecdsa-p256" // default
	KeyEd25519   KeyType = "ed25519"
)

// EnrollConfig configures Enroll.
type EnrollConfig struct {
	ServerURL string // https://host:port of the control plane
	Token     string // one-time join token from `warden token create`
	KeyType   KeyType
	// Attester, when set, attests the agent at enrollment: a challenge round trip
	// (credential activation + a quote over the server's nonce) fills the evidence slot.
	// Classes that require attestation (by default transactional and regulated) cannot
	// enrol without it.
	Attester Attester
	Timeout  time.Duration // per request; default 30s
}

// RefusedError is a refusal by the control plane, with its stable reason code
// (token_used, csr_id_mismatch, identity_revoked, ...).
type RefusedError = api.Error

// Reason returns the reason code of a refusal, or "" for other errors.
func Reason(err error) string {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// Enroll generates a key pair (which never leaves the process), authenticates the server
// by the root-certificate pin inside the join token, and exchanges token + CSR (+ evidence)
// for a first X509-SVID and the trust bundle.
func Enroll(ctx context.Context, cfg EnrollConfig) (*x509svid.SVID, *x509bundle.Bundle, error) {
	tok, err := enroll.ParseToken(cfg.Token)
	if err != nil {
		return nil, nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	base := strings.TrimRight(cfg.ServerURL, "/")
	bundle, td, err := fetchPinnedBundle(ctx, base, tok.Pin, timeout)
	if err != nil {
		return nil, nil, err
	}
	key, csr, err := newKeyAndCSR(cfg.KeyType)
	if err != nil {
		return nil, nil, err
	}
	req := api.EnrollRequest{Token: cfg.Token, CSR: csr}
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.TLSClientConfig(bundle, tlsconfig.AuthorizeID(serverID(td))),
	}}
	defer client.CloseIdleConnections()
	if cfg.Attester != nil {
		if req.Evidence, err = attestSlot(ctx, client, base, cfg.Token, cfg.Attester); err != nil {
			return nil, nil, err
		}
	}
	var resp api.SVIDResponse
	if err := postJSON(ctx, client, base+api.PathEnroll, req, &resp); err != nil {
		return nil, nil, err
	}
	return parseSVIDResponse(&resp, key, true)
}

// fetchPinnedBundle fetches the bundle over TLS without prior trust and accepts it only
// when its root matches the pin from the join token; the server's chain must then verify
// against that root as the control plane's X509-SVID.
func fetchPinnedBundle(ctx context.Context, base string, pin [32]byte, timeout time.Duration) (*x509bundle.Bundle, spiffeid.TrustDomain, error) {
	var serverChain [][]byte
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // trust comes from the pin, checked below before anything is used
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			serverChain = raw
			return nil
		},
	}}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+api.PathBundlePEM, nil)
	if err != nil {
		return nil, spiffeid.TrustDomain{}, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, spiffeid.TrustDomain{}, fmt.Errorf("sdk: fetch bundle: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil || res.StatusCode != http.StatusOK {
		return nil, spiffeid.TrustDomain{}, fmt.Errorf("sdk: fetch bundle: status %d", res.StatusCode)
	}
	var root *x509.Certificate
	for rest := body; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		sum := sha256.Sum256(b.Bytes)
		if subtle.ConstantTimeCompare(sum[:], pin[:]) == 1 {
			root, err = x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, spiffeid.TrustDomain{}, fmt.Errorf("sdk: bundle: %w", err)
			}
		}
	}
	if root == nil || len(root.URIs) != 1 {
		return nil, spiffeid.TrustDomain{}, errors.New("sdk: the server's root does not match the join token's pin: refusing to enrol")
	}
	td, err := spiffeid.TrustDomainFromURI(root.URIs[0])
	if err != nil {
		return nil, spiffeid.TrustDomain{}, fmt.Errorf("sdk: root: %w", err)
	}
	bundle := x509bundle.FromX509Authorities(td, []*x509.Certificate{root})
	id, _, err := x509svid.ParseAndVerify(serverChain, bundle)
	if err != nil || id != serverID(td) {
		return nil, spiffeid.TrustDomain{}, fmt.Errorf("sdk: the server is not the control plane of %s", td)
	}
	return bundle, td, nil
}

func serverID(td spiffeid.TrustDomain) spiffeid.ID {
	return spiffeid.RequireFromPath(td, "/warden/server")
}

func newKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case "", KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	default:
		return nil, fmt.Errorf("sdk: unknown key type %q", kt)
	}
}

// newKeyAndCSR generates a fresh key of type kt (it never leaves the process) and a CSR
// for it; the control plane puts the SPIFFE ID in, so the CSR names nothing.
func newKeyAndCSR(kt KeyType) (crypto.Signer, []byte, error) {
	key, err := newKey(kt)
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("sdk: csr: %w", err)
	}
	return key, csr, nil
}

func postJSON(ctx context.Context, client *http.Client, url string, in, out any) error {
	return api.Do(ctx, client, http.MethodPost, url, in, out)
}

// parseSVIDResponse turns an enroll or renew answer into an SVID for key. With verify set
// the chain is also checked against the returned bundle; renewals skip that (two ECDSA
// verifications) because the answer came over mTLS from the control plane itself, already
// authenticated against the bundle the agent holds. x509svid.ParseRaw still checks the
// SVID's shape and that the leaf certifies our key.
func parseSVIDResponse(resp *api.SVIDResponse, key crypto.Signer, verify bool) (*x509svid.SVID, *x509bundle.Bundle, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	svid, err := x509svid.ParseRaw(pemToDER([]byte(resp.SVIDPEM)), keyDER)
	if err != nil {
		return nil, nil, fmt.Errorf("sdk: svid: %w", err)
	}
	bundle, err := x509bundle.Parse(svid.ID.TrustDomain(), []byte(resp.BundlePEM))
	if err != nil {
		return nil, nil, fmt.Errorf("sdk: bundle: %w", err)
	}
	if verify {
		if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
			return nil, nil, fmt.Errorf("sdk: issued svid does not verify: %w", err)
		}
	}
	return svid, bundle, nil
}

func pemToDER(p []byte) []byte {
	var out []byte
	for {
		var b *pem.Block
		b, p = pem.Decode(p)
		if b == nil {
			return out
		}
		out = append(out, b.Bytes...)
	}
}

// WriteFiles writes svid.pem, svid_key.pem (0600) and bundle.pem into dir, each replaced
// atomically (temporary file, fsync, rename). The key is written first, so a reader that
// sees a new certificate finds its key.
func WriteFiles(dir string, svid *x509svid.SVID, bundle *x509bundle.Bundle) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	certPEM, keyPEM, err := svid.Marshal()
	if err != nil {
		return err
	}
	bundlePEM, err := bundle.Marshal()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{KeyFile, keyPEM, 0o600}, {SVIDFile, certPEM, 0o644}, {BundleFile, bundlePEM, 0o644}} {
		if err := writeAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("sdk: write %s: %w", f.name, err)
		}
	}
	return nil
}

// LoadFiles reads what WriteFiles wrote. The three files are replaced one by one, so a
// read during a rotation can pair a new key with the old certificate; LoadFiles then
// reads again (a few times, 50 ms apart) until the pair matches. Readers in other
// languages should do the same.
func LoadFiles(dir string) (*x509svid.SVID, *x509bundle.Bundle, error) {
	var svid *x509svid.SVID
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if svid, err = x509svid.Load(filepath.Join(dir, SVIDFile), filepath.Join(dir, KeyFile)); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sdk: %w", err)
	}
	bundle, err := x509bundle.Load(svid.ID.TrustDomain(), filepath.Join(dir, BundleFile))
	if err != nil {
		return nil, nil, fmt.Errorf("sdk: %w", err)
	}
	return svid, bundle, nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	return ca.WriteFileAtomic(path, data, mode)
}
