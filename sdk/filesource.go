package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// FileSourceConfig configures a FileSource.
type FileSourceConfig struct {
	// Dir holds svid.pem, svid_key.pem and bundle.pem, kept current by another process
	// (`warden enroll --watch`, or a Source with Dir set).
	Dir string
	// Interval between checks of the files for a change; default 1 s.
	Interval time.Duration
	// OnChange, when set, is called after each reload that brought a new SVID.
	OnChange func(*x509svid.SVID)
	Logger   *slog.Logger
	Timeout  time.Duration // of HTTPClient's requests; default 30 s
}

// FileSource serves the SVID and trust bundle that another process keeps in a directory
// and never renews them: renewal — with the agent's TPM evidence where its class needs it
// — stays with the process that owns the identity. It implements go-spiffe's
// x509svid.Source and x509bundle.Source, so a TLS config built on it presents the newest
// SVID on every handshake.
//
// Run checks the files every Interval (size, modification time and inode of each, so an
// atomic rename is seen) and reloads them on a change; Reload does it at once (SIGHUP).
// A reload is accepted only if the files hold the same SPIFFE ID as at open, the key
// matches the certificate, the chain verifies against the bundle, and the SVID is not
// older than the one held; otherwise the held SVID stays and the error is logged. While
// the held SVID is expired, GetX509SVID re-reads the files itself (at most every 200 ms),
// so a handshake right after a rotation does not wait for the next poll.
type FileSource struct {
	cfg    FileSourceConfig
	id     spiffeid.ID
	log    *slog.Logger
	client *http.Client

	mu     sync.RWMutex
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle

	reloadMu   sync.Mutex // one reload at a time; guards stamp and lastReload
	stamp      [3]fileStamp
	lastReload time.Time
	warned     string // serial already warned about as not renewed
}

var (
	_ x509svid.Source   = (*FileSource)(nil)
	_ x509bundle.Source = (*FileSource)(nil)
)

// fileStamp identifies one version of a file without reading it.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

// OpenFileSource loads the files in cfg.Dir (sdk.LoadFiles) and checks the chain.
func OpenFileSource(cfg FileSourceConfig) (*FileSource, error) {
	if cfg.Dir == "" {
		return nil, errors.New("sdk: FileSourceConfig needs Dir")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	f := &FileSource{cfg: cfg, log: cfg.Logger}
	f.stamp = stampFiles(cfg.Dir)
	svid, bundle, err := loadVerified(cfg.Dir)
	if err != nil {
		return nil, err
	}
	f.id, f.svid, f.bundle = svid.ID, svid, bundle
	f.client = controlPlaneClient(f, f, f.id.TrustDomain(), cfg.Timeout)
	return f, nil
}

// ID is the SPIFFE ID the files hold (fixed at open).
func (f *FileSource) ID() spiffeid.ID { return f.id }

// Dir is the directory the source reads.
func (f *FileSource) Dir() string { return f.cfg.Dir }

// GetX509SVID returns the newest SVID read from the files.
func (f *FileSource) GetX509SVID() (*x509svid.SVID, error) {
	f.mu.RLock()
	svid := f.svid
	f.mu.RUnlock()
	if expired(svid, time.Now()) {
		f.reloadIfDue(200 * time.Millisecond)
		f.mu.RLock()
		svid = f.svid
		f.mu.RUnlock()
	}
	return svid, nil
}

// GetX509BundleForTrustDomain returns the bundle of the source's trust domain.
func (f *FileSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != f.id.TrustDomain() {
		return nil, fmt.Errorf("sdk: no bundle for trust domain %q", td)
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.bundle, nil
}

// HTTPClient returns an mTLS client that presents the current SVID and trusts only the
// control plane (trust state, audit shipping, approvals).
func (f *FileSource) HTTPClient() *http.Client { return f.client }

// Reload re-reads the files now, whatever their stamps say. It reports whether a new
// SVID was taken; on an error the held SVID stays.
func (f *FileSource) Reload() (bool, error) {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	return f.reloadLocked(stampFiles(f.cfg.Dir))
}

// Run checks the files every Interval until ctx ends, reloading on a change, and warns
// when the SVID is not renewed in time (the writer has stopped). It returns nil.
func (f *FileSource) Run(ctx context.Context) error {
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		f.reloadIfChanged()
		f.warnIfStale(time.Now())
	}
}

func (f *FileSource) reloadIfChanged() {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	st := stampFiles(f.cfg.Dir)
	if st == f.stamp {
		return
	}
	if _, err := f.reloadLocked(st); err != nil {
		f.log.Warn("svid files changed but were not taken", "dir", f.cfg.Dir, "err", err)
	}
}

func (f *FileSource) reloadIfDue(every time.Duration) {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	if time.Since(f.lastReload) < every {
		return
	}
	_, _ = f.reloadLocked(stampFiles(f.cfg.Dir))
}

func (f *FileSource) reloadLocked(st [3]fileStamp) (bool, error) {
	f.lastReload = time.Now()
	svid, bundle, err := loadVerified(f.cfg.Dir)
	if err != nil {
		return false, err
	}
	f.stamp = st
	if svid.ID != f.id {
		return false, fmt.Errorf("sdk: %s now holds %s, not %s: identity changes need a restart", f.cfg.Dir, svid.ID, f.id)
	}
	f.mu.Lock()
	cur := f.svid
	if svid.Certificates[0].SerialNumber.Cmp(cur.Certificates[0].SerialNumber) == 0 {
		f.bundle = bundle
		f.mu.Unlock()
		return false, nil
	}
	if svid.Certificates[0].NotBefore.Before(cur.Certificates[0].NotBefore) {
		f.mu.Unlock()
		return false, fmt.Errorf("sdk: %s holds an SVID older than the one in use (not before %s): kept the newer", f.cfg.Dir, svid.Certificates[0].NotBefore.UTC().Format(time.RFC3339))
	}
	f.svid, f.bundle = svid, bundle
	f.mu.Unlock()
	f.client.CloseIdleConnections() // new connections present the new SVID
	f.log.Info("svid reloaded from files", "dir", f.cfg.Dir, "spiffe_id", svid.ID.String(), "expires_at", svid.Certificates[0].NotAfter)
	if f.cfg.OnChange != nil {
		f.cfg.OnChange(svid)
	}
	return true, nil
}

// warnIfStale logs once per SVID when less than a quarter of its lifetime is left (the
// writer renews at half-life), and at every check once it has expired.
func (f *FileSource) warnIfStale(now time.Time) {
	f.mu.RLock()
	leaf := f.svid.Certificates[0]
	f.mu.RUnlock()
	left, life := leaf.NotAfter.Sub(now), leaf.NotAfter.Sub(leaf.NotBefore)
	switch {
	case left <= 0:
		f.log.Error("the SVID in the files has expired and was not renewed: is `warden enroll --watch` running for this directory?",
			"dir", f.cfg.Dir, "spiffe_id", f.id.String(), "expired_at", leaf.NotAfter)
	case left < life/4 && f.warned != leaf.SerialNumber.String():
		f.warned = leaf.SerialNumber.String()
		f.log.Warn("the SVID in the files is near expiry and was not renewed at half-life: is `warden enroll --watch` running for this directory?",
			"dir", f.cfg.Dir, "spiffe_id", f.id.String(), "expires_at", leaf.NotAfter)
	}
}

// loadVerified reads the files and checks the chain against the bundle at the leaf's
// NotBefore (an expired SVID still loads: the gate reports it, it does not vanish).
func loadVerified(dir string) (*x509svid.SVID, *x509bundle.Bundle, error) {
	svid, bundle, err := LoadFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	leaf := svid.Certificates[0]
	if _, _, err := x509svid.Verify(svid.Certificates, bundle, x509svid.WithTime(leaf.NotBefore.Add(time.Second))); err != nil {
		return nil, nil, fmt.Errorf("sdk: %s: the SVID does not verify against bundle.pem: %w", dir, err)
	}
	return svid, bundle, nil
}

func stampFiles(dir string) [3]fileStamp {
	var out [3]fileStamp
	for i, name := range []string{KeyFile, SVIDFile, BundleFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		out[i] = fileStamp{size: fi.Size(), mtime: fi.ModTime()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			out[i].ino = uint64(st.Ino)
		}
	}
	return out
}

// controlPlaneClient is an mTLS client presenting svid's current SVID and accepting only
// the control plane of td. Keep-alive connections are reused across rotations; new ones
// present the newest SVID.
func controlPlaneClient(svid x509svid.Source, bundle x509bundle.Source, td spiffeid.TrustDomain, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		TLSClientConfig:     tlsconfig.MTLSClientConfig(svid, bundle, tlsconfig.AuthorizeID(serverID(td))),
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}}
}
