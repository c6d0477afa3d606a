package gate

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/policy"
	"github.com/warden-a2a/warden/internal/truststate"
)

// Policy sources: where the bundle a gate enforces came from.
const (
	PolicyFromDir     = "dir"     // policy.dir, reloaded on change and on SIGHUP
	PolicyFromBundle  = "bundle"  // policy.bundle, a signed file, reloaded on SIGHUP
	PolicyFromCentral = "central" // the revision the trust state names, fetched from the control plane
)

// Reason codes of policy_bundle events written by a gate.
const (
	BundleActivated = "policy_activated" // outcome activated
	BundleSignature = "bundle_signature" // the signature does not verify with the gate's key
	BundleInvalid   = "bundle_invalid"   // does not parse or compile, or its revision does not match its content
	BundleMismatch  = "bundle_revision_mismatch"
)

// PolicySourceConfig configures a PolicySource.
type PolicySourceConfig struct {
	Holder     *policy.Holder
	Dir        string            // a bundle directory (reloaded on change and on Reload)
	BundleFile string            // or a signed bundle file (reloaded on Reload)
	PublicKey  ed25519.PublicKey // verifies BundleFile and every central bundle
	// Central follows the trust state's policy_revision (Follow): each new revision is
	// fetched with Fetch, verified with PublicKey, swapped in and kept in CachePath, the
	// bundle enforced after a restart until the control plane answers. Dir or BundleFile,
	// when set, is enforced until the trust state names a revision.
	Central   bool
	Fetch     func(ctx context.Context, revision string) ([]byte, error)
	CachePath string
	// Record receives the policy_bundle events (activated, refused); nil drops them.
	Record func(ctx context.Context, ev audit.Event) error
	GateID string // the gate's SPIFFE ID, subject and gate_id of the events
	Zone   string
	// OnChange is called after every swap (e.g. to send a heartbeat at once).
	OnChange func()
	Logger   *slog.Logger
	// PollInterval is how often Dir is checked for changes (default 1 s); a change is
	// loaded once the directory has been unchanged for one interval.
	PollInterval time.Duration
}

// PolicySource keeps a gate's policy.Holder current: it loads the local bundle, reloads
// it when asked (SIGHUP) or when the directory changes, and in central mode follows the
// revision the signed trust state names. A bundle that does not load or verify is refused
// with its reason in a policy_bundle event, and the last good bundle keeps enforcing.
type PolicySource struct {
	cfg PolicySourceConfig

	mu       sync.Mutex
	revision string // enforced
	source   string
	lastErr  string
	wanted   string // central: the revision the newest trust state names
	refused  string // central: a revision that failed to verify or load (not fetched again)
	retryAt  time.Time
	stamp    string // Dir's fingerprint when it was last loaded
	kick     chan struct{}
}

// NewPolicySource loads the first bundle. Without Central, Dir or BundleFile must load;
// with Central, the cached central bundle is preferred, then Dir or BundleFile, and
// nothing loaded is not an error (the gate refuses every call with no_policy_loaded until
// the first central bundle arrives).
func NewPolicySource(cfg PolicySourceConfig) (*PolicySource, error) {
	if cfg.Holder == nil {
		return nil, errors.New("gate: policy source needs a Holder")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Central && (cfg.Fetch == nil || cfg.PublicKey == nil) {
		return nil, errors.New("gate: central policy needs Fetch and PublicKey")
	}
	p := &PolicySource{cfg: cfg, kick: make(chan struct{}, 1)}
	if cfg.Central && cfg.CachePath != "" {
		if raw, err := os.ReadFile(cfg.CachePath); err == nil {
			if e, err := policy.ReadBundle(raw, cfg.PublicKey, policy.Options{}); err == nil {
				p.install(e, PolicyFromCentral)
				cfg.Logger.Info("gate: enforcing the cached central policy until the control plane answers", "revision", e.Revision())
				return p, nil
			}
			cfg.Logger.Warn("gate: cached central policy bundle does not verify; ignored", "path", cfg.CachePath)
		}
	}
	if cfg.Dir == "" && cfg.BundleFile == "" {
		if cfg.Central {
			return p, nil
		}
		return nil, errors.New("gate: policy needs dir, bundle or central")
	}
	p.stamp = p.dirStamp()
	e, src, err := p.loadLocal()
	if err != nil {
		return nil, err
	}
	p.install(e, src)
	return p, nil
}

// Status returns the revision enforced, where it came from, and the last error of a
// reload or fetch ("" once a later one succeeded).
func (p *PolicySource) Status() (revision, source, lastErr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.revision, p.source, p.lastErr
}

func (p *PolicySource) install(e *policy.Engine, src string) (prev string) {
	p.cfg.Holder.Swap(e)
	p.mu.Lock()
	prev = p.revision
	p.revision, p.source, p.lastErr = e.Revision(), src, ""
	p.mu.Unlock()
	return prev
}

// local returns the local bundle's paths (SetLocal may change them).
func (p *PolicySource) local() (dir, bundleFile string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg.Dir, p.cfg.BundleFile
}

func (p *PolicySource) loadLocal() (*policy.Engine, string, error) {
	dir, bundleFile := p.local()
	if dir != "" {
		e, err := policy.Load(dir, policy.Options{})
		return e, PolicyFromDir, err
	}
	raw, err := os.ReadFile(bundleFile)
	if err != nil {
		return nil, PolicyFromBundle, err
	}
	e, err := policy.ReadBundle(raw, p.cfg.PublicKey, policy.Options{})
	return e, PolicyFromBundle, err
}

// Reload re-reads the local bundle (trigger names why: "sighup", "change"). In central
// mode once the trust state names a revision, the central bundle stays in force and
// Reload only retries a failed fetch. A bundle that fails is refused and audited; the
// current one keeps enforcing; the error is returned.
func (p *PolicySource) Reload(ctx context.Context, trigger string) error {
	p.mu.Lock()
	central := p.cfg.Central && p.wanted != ""
	p.refused, p.retryAt = "", time.Time{}
	p.mu.Unlock()
	if dir, bundleFile := p.local(); central || (dir == "" && bundleFile == "") {
		p.poke()
		return nil
	}
	e, src, err := p.loadLocal()
	if err != nil {
		p.refuse(ctx, src, trigger, "", err)
		return err
	}
	p.activate(ctx, e, src, trigger)
	return nil
}

// Follow hands the source a newly verified trust state: in central mode its
// policy_revision becomes the revision to enforce.
func (p *PolicySource) Follow(doc *truststate.Document) {
	if !p.cfg.Central || doc == nil {
		return
	}
	p.mu.Lock()
	changed := doc.PolicyRevision != p.wanted
	p.wanted = doc.PolicyRevision
	if changed {
		p.retryAt = time.Time{}
	}
	p.mu.Unlock()
	if changed {
		p.poke()
	}
}

func (p *PolicySource) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run fetches central revisions as the trust state names them (retrying failed fetches
// with backoff up to 30 s) and watches Dir for changes, until ctx ends.
func (p *PolicySource) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.PollInterval)
	defer t.Stop()
	p.mu.Lock()
	stamp, pending := p.stamp, ""
	p.mu.Unlock()
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-t.C:
		}
		if p.cfg.Central {
			if fetched, failed := p.syncCentral(ctx); failed {
				p.mu.Lock()
				p.retryAt = time.Now().Add(backoff)
				p.mu.Unlock()
				backoff = min(backoff*2, 30*time.Second)
			} else if fetched {
				backoff = time.Second
			}
		}
		if dir, _ := p.local(); dir != "" {
			// A change is loaded once the directory stayed the same for one interval, so
			// an editor's half-written save is not refused as a broken bundle.
			now := p.dirStamp()
			switch {
			case now == stamp:
				pending = ""
			case now != pending:
				pending = now
			default:
				stamp, pending = now, ""
				_ = p.Reload(ctx, "change")
			}
		}
	}
}

// syncCentral fetches and installs the wanted revision if it is not the one enforced.
func (p *PolicySource) syncCentral(ctx context.Context) (fetched, failed bool) {
	p.mu.Lock()
	want, have, refused, retryAt := p.wanted, p.revision, p.refused, p.retryAt
	p.mu.Unlock()
	if want == "" || want == have || want == refused || time.Now().Before(retryAt) {
		return false, false
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	raw, err := p.cfg.Fetch(fctx, want)
	cancel()
	if err != nil {
		p.mu.Lock()
		p.lastErr = fmt.Sprintf("fetch policy revision %.12s: %v", want, err)
		p.mu.Unlock()
		p.cfg.Logger.Warn("gate: central policy fetch failed; the current bundle keeps enforcing", "revision", want, "err", err)
		return false, true
	}
	e, err := policy.ReadBundle(raw, p.cfg.PublicKey, policy.Options{})
	if err == nil && e.Revision() != want {
		err = fmt.Errorf("%w: the control plane served revision %s for %s", errRevisionMismatch, e.Revision(), want)
	}
	if err != nil {
		p.mu.Lock()
		p.refused = want
		p.mu.Unlock()
		p.refuse(ctx, PolicyFromCentral, "trust_state", want, err)
		return false, false
	}
	if p.cfg.CachePath != "" {
		if err := cacheBundle(p.cfg.CachePath, raw); err != nil {
			p.cfg.Logger.Warn("gate: cannot cache the central policy bundle", "path", p.cfg.CachePath, "err", err)
		}
	}
	p.activate(ctx, e, PolicyFromCentral, "trust_state")
	return true, false
}

var errRevisionMismatch = errors.New("bundle revision mismatch")

func (p *PolicySource) activate(ctx context.Context, e *policy.Engine, src, trigger string) {
	p.mu.Lock()
	same := e.Revision() == p.revision
	p.mu.Unlock()
	if same {
		p.mu.Lock()
		p.source, p.lastErr = src, ""
		p.mu.Unlock()
		return
	}
	prev := p.install(e, src)
	p.cfg.Logger.Info("gate: policy bundle activated", "revision", e.Revision(), "previous", prev, "source", src, "trigger", trigger)
	p.record(ctx, "activated", BundleActivated, map[string]string{"revision": e.Revision(), "previous_revision": prev,
		"source": src, "trigger": trigger})
	if p.cfg.OnChange != nil {
		p.cfg.OnChange()
	}
}

func (p *PolicySource) refuse(ctx context.Context, src, trigger, revision string, err error) {
	reason := BundleInvalid
	switch {
	case errors.Is(err, policy.ErrBundleSignature):
		reason = BundleSignature
	case errors.Is(err, errRevisionMismatch):
		reason = BundleMismatch
	}
	p.mu.Lock()
	p.lastErr = fmt.Sprintf("%s bundle refused (%s): %v", src, reason, err)
	cur := p.revision
	p.mu.Unlock()
	p.cfg.Logger.Error("gate: policy bundle refused; the last good one keeps enforcing", "source", src, "reason", reason, "revision", revision, "enforcing", cur, "err", err)
	msg := err.Error()
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	p.record(ctx, "refused", reason, map[string]string{"revision": revision, "enforcing_revision": cur, "source": src,
		"trigger": trigger, "error": msg})
	if p.cfg.OnChange != nil {
		p.cfg.OnChange()
	}
}

func (p *PolicySource) record(ctx context.Context, outcome, reason string, detail map[string]string) {
	if p.cfg.Record == nil {
		return
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	for k, v := range detail {
		if v == "" {
			delete(detail, k)
		}
	}
	ev := audit.Event{V: audit.SchemaVersion, ID: "policy_bundle-" + hex.EncodeToString(b[:]), Kind: audit.KindPolicyBundle,
		Time: time.Now().UTC(), Subject: p.cfg.GateID, Actor: p.cfg.GateID, GateID: p.cfg.GateID, Zone: p.cfg.Zone,
		Outcome: outcome, Reason: reason, Detail: detail}
	if err := p.cfg.Record(ctx, ev); err != nil {
		p.cfg.Logger.Error("gate: policy_bundle event not recorded", "reason", reason, "err", err)
	}
}

// dirStamp fingerprints Dir by the names, sizes and modification times of its files.
func (p *PolicySource) dirStamp() string {
	dir, _ := p.local()
	if dir == "" {
		return ""
	}
	h := sha256.New()
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(h, "err %s\n", path)
			return nil
		}
		if info, err := d.Info(); err == nil && !d.IsDir() {
			fmt.Fprintf(h, "%s %d %d\n", path, info.Size(), info.ModTime().UnixNano())
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

// cacheBundle keeps the last good central bundle for a restart (mode 0600).
func cacheBundle(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return ca.WriteFileAtomic(path, b, 0o600)
}

// SetLocal changes the local bundle (a gate.yaml re-read on SIGHUP names other paths);
// the next Reload loads it.
func (p *PolicySource) SetLocal(dir, bundleFile string) {
	p.mu.Lock()
	p.cfg.Dir, p.cfg.BundleFile = dir, bundleFile
	p.mu.Unlock()
}
