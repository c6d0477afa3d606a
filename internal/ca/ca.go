// Package ca is Warden's certificate authority: a self-signed root and an intermediate
// signing CA (ECDSA P-256) per trust domain, kept in the data directory with 0600
// permissions, minting X509-SVIDs exactly as the SPIFFE X509-SVID standard says
// (https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md) and ES256
// JWT-SVIDs (JWT-SVID standard) for a named audience.
//
// X509-SVID rules applied (section numbers of the X509-SVID standard):
//   - §2: exactly one URI SAN, the SPIFFE ID; DNS SANs only where asked (the server's own SVID).
//   - §4.1: the signing certificates have CA=true and keyCertSign; leaves have CA=false.
//   - §4.3: leaves have digitalSignature and neither keyCertSign nor cRLSign.
//   - §4.4: leaves carry the serverAuth and clientAuth extended key usages.
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Limits of SVID lifetimes.
const (
	DefaultTTL = 15 * time.Minute
	MaxTTL     = 24 * time.Hour
	// backdate is how far NotBefore is set into the past to absorb clock skew between
	// the server and its relying parties. It counts inside the TTL: NotAfter-NotBefore == TTL.
	backdate = 10 * time.Second

	rootLifetime         = 10 * 365 * 24 * time.Hour
	intermediateLifetime = 365 * 24 * time.Hour
)

// File names inside Config.Dir.
const (
	rootCertFile  = "root.pem"
	rootKeyFile   = "root_key.pem"
	interCertFile = "intermediate.pem"
	interKeyFile  = "intermediate_key.pem"
	jwtKeyFile    = "jwt_key.pem" // before JWT key rotation; imported into jwt_keys.json
)

// Config configures LoadOrCreate.
type Config struct {
	TrustDomain spiffeid.TrustDomain
	Dir         string           // where the keys and certificates live (created 0700)
	Now         func() time.Time // nil means time.Now
}

// CA holds the key material of one trust domain. It is safe for concurrent use.
type CA struct {
	td   spiffeid.TrustDomain
	now  func() time.Time
	dir  string
	root *x509.Certificate
	jwt  atomic.Pointer[jwtKeySet] // JWT-SVID signing keys (jwtkeys.go)

	// cur signs new SVIDs; prev is the intermediate it replaced in this process, kept
	// so that ChainFor still completes the chains of SVIDs it signed.
	cur, prev atomic.Pointer[intermediate]
	rotating  sync.Mutex // one RotateIntermediate at a time in this process
}

// intermediate is one intermediate CA: its certificate and key.
type intermediate struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// LoadOrCreate loads the CA from cfg.Dir, or creates the root, the intermediate and the
// JWT signing key on first start. Keys are written with mode 0600.
func LoadOrCreate(cfg Config) (*CA, error) {
	if cfg.TrustDomain.IsZero() {
		return nil, errors.New("ca: trust domain is required")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	c := &CA{td: cfg.TrustDomain, now: now, dir: cfg.Dir}
	p := func(name string) string { return filepath.Join(cfg.Dir, name) }
	if _, err := os.Stat(p(rootCertFile)); errors.Is(err, os.ErrNotExist) {
		if err := c.create(cfg.Dir); err != nil {
			return nil, err
		}
	}
	var err error
	if c.root, err = readCert(p(rootCertFile)); err != nil {
		return nil, err
	}
	inter := &intermediate{}
	if inter.cert, err = readCert(p(interCertFile)); err != nil {
		return nil, err
	}
	if inter.key, err = readKey(p(interKeyFile)); err != nil {
		return nil, err
	}
	jwt, err := loadJWTKeys(cfg.Dir)
	if err != nil {
		return nil, err
	}
	c.jwt.Store(jwt)
	if !inter.cert.PublicKey.(*ecdsa.PublicKey).Equal(inter.key.Public()) {
		// A rotation that stopped between its two renames: the new key is in place,
		// its certificate still under the .next name. Finish it.
		next, nerr := readCert(p(interCertFile + nextSuffix))
		if nerr != nil || !next.PublicKey.(*ecdsa.PublicKey).Equal(inter.key.Public()) {
			return nil, errors.New("ca: intermediate key does not match its certificate")
		}
		if err := os.Rename(p(interCertFile+nextSuffix), p(interCertFile)); err != nil {
			return nil, fmt.Errorf("ca: finish intermediate rotation: %w", err)
		}
		inter.cert = next
	}
	if err := inter.cert.CheckSignatureFrom(c.root); err != nil {
		return nil, fmt.Errorf("ca: intermediate is not signed by the root: %w", err)
	}
	c.cur.Store(inter)
	if td, err := spiffeid.TrustDomainFromURI(c.root.URIs[0]); err != nil || td != c.td {
		return nil, fmt.Errorf("ca: %s holds the CA of another trust domain", cfg.Dir)
	}
	return c, nil
}

// create makes the root, intermediate and JWT keys. Each file is written to a temporary
// name and renamed, root certificate last, so a crash leaves no half-made CA that loads.
func (c *CA) create(dir string) error {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	now := c.now()
	firstJWT, err := newJWTKey(now, now)
	if err != nil {
		return err
	}
	if err := writeJWTKeys(dir, &jwtKeySet{seq: 1, keys: []jwtKey{firstJWT}}); err != nil {
		return err
	}
	tdURI := c.td.ID().URL()
	rootTpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{Organization: []string{"Warden"}, CommonName: "Warden root CA " + c.td.Name()},
		URIs:                  []*url.URL{tdURI},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(rootLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTpl, rootTpl, rootKey.Public(), rootKey)
	if err != nil {
		return fmt.Errorf("ca: root: %w", err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	interDER, err := c.signIntermediate(root, rootKey, interKey, now)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{rootKeyFile, keyPEM(rootKey)},
		{interKeyFile, keyPEM(interKey)},
		{interCertFile, CertsPEM(mustParse(interDER))},
		{rootCertFile, CertsPEM(root)},
	} {
		if err := WriteFileAtomic(filepath.Join(dir, f.name), f.data, 0o600); err != nil {
			return fmt.Errorf("ca: %w", err)
		}
	}
	return nil
}

// signIntermediate makes an intermediate CA certificate for key, signed by the root.
func (c *CA) signIntermediate(root *x509.Certificate, rootKey, key *ecdsa.PrivateKey, now time.Time) ([]byte, error) {
	notAfter := now.Add(intermediateLifetime)
	if notAfter.After(root.NotAfter) {
		notAfter = root.NotAfter
	}
	tpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{Organization: []string{"Warden"}, CommonName: "Warden intermediate CA " + c.td.Name()},
		URIs:                  []*url.URL{c.td.ID().URL()},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, root, key.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: intermediate: %w", err)
	}
	return der, nil
}

// nextSuffix names the files of an intermediate being rotated in.
const nextSuffix = ".next"

// IntermediateDue reports whether the intermediate has less than a third of its lifetime
// left at now, so that RotateIntermediate should run.
func (c *CA) IntermediateDue(now time.Time) bool {
	return c.cur.Load().cert.NotAfter.Sub(now) < intermediateLifetime/3
}

// RotateIntermediate makes a new intermediate key and certificate, signed by the root
// (its key read from disk for this and dropped), writes them and signs every SVID from
// then on with it. SVIDs signed by the previous intermediate stay valid: both chain to
// the same root, which is all a trust bundle holds. The files are written under .next
// names and renamed key first; LoadOrCreate finishes a rotation that stopped between the
// two renames. It returns the new intermediate certificate.
func (c *CA) RotateIntermediate() (*x509.Certificate, error) {
	return c.RotateIntermediateWith(nil)
}

// RotateIntermediateWith is RotateIntermediate with a commit point: once the new key and
// certificate are written under their .next names, and before the first rename makes
// them current, record(cert) is called (the control plane appends its ca_rotation audit
// event there). An error from record abandons the rotation: the .next files are removed
// and the error is returned. A crash after record and before the rename leaves the .next
// files behind; PendingIntermediate reports them and FinishPendingIntermediate installs
// or discards them (the control plane installs them when its audit log holds the event).
func (c *CA) RotateIntermediateWith(record func(next *x509.Certificate) error) (*x509.Certificate, error) {
	var cert *x509.Certificate
	err := c.underRotateLock(func(p func(string) string) error {
		rootKey, err := readKey(p(rootKeyFile))
		if err != nil {
			return err
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("ca: %w", err)
		}
		der, err := c.signIntermediate(c.root, rootKey, key, c.now())
		if err != nil {
			return err
		}
		cert = mustParse(der)
		for _, f := range []struct {
			name string
			data []byte
		}{{interKeyFile + nextSuffix, keyPEM(key)}, {interCertFile + nextSuffix, CertsPEM(cert)}} {
			if err := WriteFileAtomic(p(f.name), f.data, 0o600); err != nil {
				return fmt.Errorf("ca: %w", err)
			}
		}
		if record != nil {
			if err := record(cert); err != nil {
				c.discardNext(p)
				return err
			}
		}
		return c.installNext(p, cert, key)
	})
	if err != nil {
		return nil, err
	}
	return cert, nil
}

// underRotateLock runs fn holding the rotation lock of this process and, for replicas
// sharing the directory, an exclusive flock: the key and the certificate on disk must
// come from the same rotation.
func (c *CA) underRotateLock(fn func(p func(string) string) error) error {
	c.rotating.Lock()
	defer c.rotating.Unlock()
	p := func(name string) string { return filepath.Join(c.dir, name) }
	lock, err := os.OpenFile(p(".rotate.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("ca: rotate intermediate: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("ca: rotate intermediate: %w", err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	return fn(p)
}

// installNext renames the .next files into place (key first) and makes them current.
func (c *CA) installNext(p func(string) string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	for _, name := range []string{interKeyFile, interCertFile} {
		if err := os.Rename(p(name+nextSuffix), p(name)); err != nil {
			return fmt.Errorf("ca: rotate intermediate: %w", err)
		}
	}
	c.prev.Store(c.cur.Load())
	c.cur.Store(&intermediate{cert: cert, key: key})
	return nil
}

func (c *CA) discardNext(p func(string) string) {
	for _, name := range []string{interKeyFile, interCertFile} {
		_ = os.Remove(p(name + nextSuffix))
	}
}

// PendingIntermediate returns the certificate of a rotation that wrote its .next files
// but never installed them (a crash between RotateIntermediateWith's record and its
// rename), or nil.
func (c *CA) PendingIntermediate() *x509.Certificate {
	p := func(name string) string { return filepath.Join(c.dir, name) }
	cert, err := readCert(p(interCertFile + nextSuffix))
	if err != nil {
		return nil
	}
	key, err := readKey(p(interKeyFile + nextSuffix))
	if err != nil || !cert.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		return nil
	}
	return cert
}

// FinishPendingIntermediate installs the pending intermediate whose serial is serial
// (install true) or discards the pending files (install false). It does nothing when the
// pending rotation is gone or another one (another replica finished it meanwhile).
func (c *CA) FinishPendingIntermediate(serial string, install bool) error {
	return c.underRotateLock(func(p func(string) string) error {
		cert, err := readCert(p(interCertFile + nextSuffix))
		if err != nil || SerialHex(cert) != serial {
			return nil
		}
		key, err := readKey(p(interKeyFile + nextSuffix))
		if err != nil || !cert.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) || !install {
			c.discardNext(p)
			return nil
		}
		return c.installNext(p, cert, key)
	})
}

// TrustDomain returns the CA's trust domain.
func (c *CA) TrustDomain() spiffeid.TrustDomain { return c.td }

// Root returns the root certificate (the trust anchor).
func (c *CA) Root() *x509.Certificate { return c.root }

// Intermediates returns the chain that follows a leaf the CA signs now (leaf first, then
// these). For a leaf already signed, ChainFor is exact across a rotation.
func (c *CA) Intermediates() []*x509.Certificate { return []*x509.Certificate{c.cur.Load().cert} }

// ChainFor returns the intermediates that complete leaf's chain: the current
// intermediate, or the one it replaced if that signed leaf.
func (c *CA) ChainFor(leaf *x509.Certificate) []*x509.Certificate {
	for _, in := range []*intermediate{c.cur.Load(), c.prev.Load()} {
		if in != nil && leaf.CheckSignatureFrom(in.cert) == nil {
			return []*x509.Certificate{in.cert}
		}
	}
	return c.Intermediates()
}

// X509Bundle returns the trust bundle of the trust domain.
func (c *CA) X509Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(c.td, []*x509.Certificate{c.root})
}

// SPIFFEBundle returns the SPIFFE bundle of the trust domain: the root as X.509
// authority, every published JWT-SVID key, and the sequence number.
func (c *CA) SPIFFEBundle() *spiffebundle.Bundle {
	set := c.jwt.Load()
	b := spiffebundle.New(c.td)
	b.AddX509Authority(c.root)
	for _, k := range set.published() {
		_ = b.AddJWTAuthority(k.KID, k.Public)
	}
	b.SetSequenceNumber(set.seq)
	return b
}

// RootPin returns the SHA-256 of the root certificate's DER, which join tokens carry so a
// new agent can authenticate the server before it has a bundle.
func (c *CA) RootPin() [32]byte { return sha256.Sum256(c.root.Raw) }

// X509Request asks for one X509-SVID.
type X509Request struct {
	PublicKey crypto.PublicKey
	ID        spiffeid.ID
	TTL       time.Duration // 0 means DefaultTTL; above MaxTTL is refused
	DNSNames  []string      // extra DNS SANs (the server's own SVID)
	IPs       []net.IP      // extra IP SANs (the server's own SVID)
}

// ErrTTL is returned for a TTL above MaxTTL or below zero.
var ErrTTL = fmt.Errorf("ca: ttl must be between 0 and %s", MaxTTL)

// SignX509SVID mints an X509-SVID leaf. The lifetime NotAfter-NotBefore equals the TTL,
// cut short so the leaf never outlives the intermediate.
func (c *CA) SignX509SVID(req X509Request) (*x509.Certificate, error) {
	ttl := req.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < 0 || ttl > MaxTTL {
		return nil, ErrTTL
	}
	if req.ID.IsZero() || req.ID.TrustDomain() != c.td || req.ID.Path() == "" {
		return nil, fmt.Errorf("ca: %q is not a workload ID in trust domain %s", req.ID, c.td)
	}
	// Backdate by at most a tenth of the lifetime, so short test TTLs stay usable.
	notBefore := c.now().Add(-min(backdate, ttl/10)).Truncate(time.Second)
	notAfter := notBefore.Add(ttl)
	in := c.cur.Load()
	if notAfter.After(in.cert.NotAfter) {
		notAfter = in.cert.NotAfter
	}
	tpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{Organization: []string{"Warden"}},
		URIs:                  []*url.URL{req.ID.URL()},
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPs,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  false,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, in.cert, req.PublicKey, in.key)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	return x509.ParseCertificate(der)
}

// SerialHex formats a certificate serial the way the store and the trust state record it.
func SerialHex(cert *x509.Certificate) string { return hex.EncodeToString(cert.SerialNumber.Bytes()) }

// randSerial returns a random positive 127-bit serial (RFC 5280 §4.1.2.2: ≤ 20 octets).
func randSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] &= 0x7f
	b[0] |= 0x40 // keep the length fixed so serials sort and compare by width
	return new(big.Int).SetBytes(b)
}

func keyID(pub crypto.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8])
}

func mustParse(der []byte) *x509.Certificate {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

// CertsPEM encodes certificates as concatenated PEM blocks.
func CertsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func keyPEM(k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// KeyPEM encodes a private key as PKCS#8 PEM.
func KeyPEM(k crypto.Signer) []byte { return keyPEM(k) }

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ca: %s: no certificate", path)
	}
	return x509.ParseCertificate(b.Bytes)
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("ca: %s: no key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("ca: %s: not an ECDSA P-256 key", path)
	}
	return ek, nil
}

// WriteFileAtomic writes data to a temporary file in the same directory, syncs it and
// renames it over path, so readers see the old or the new content, never a mix.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// CertsOf is a convenience for building chains: CertsOf(leaf) == []*x509.Certificate{leaf}.
func CertsOf(certs ...*x509.Certificate) []*x509.Certificate { return certs }
