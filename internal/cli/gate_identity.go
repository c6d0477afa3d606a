package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/gate"
	"github.com/warden-a2a/warden/sdk"
)

// gateIdentity is gate.yaml's identity block: where the gate's SVID comes from.
//
//	files (default): svid_dir is kept by another process — `warden enroll --watch` for the
//	        agent's identity or for this gate's own /gate/ identity — and the gate only
//	        reads it, reloading on every change. It never renews it, so it can never
//	        renew an attested identity without that identity's TPM evidence.
//	renew:  the gate holds its own /gate/NAME identity (first written by `warden enroll`)
//	        and renews it itself; with tpm set it attests at every renewal and recovers an
//	        expired SVID with fresh evidence, like `enroll --watch --tpm`. Refused for
//	        an agent's identity and in outbound mode.
//	workload_api: the SVID and the own trust domain's bundle come from a SPIFFE Workload
//	        API socket (workload_api), e.g. the agent's `warden enroll --watch
//	        --workload-api`; the gate never renews it. svid_dir then holds only the
//	        gate's trust-state cache and audit spool.
type gateIdentity struct {
	Source      string   `yaml:"source"`
	TPM         *gateTPM `yaml:"tpm"`
	WorkloadAPI string   `yaml:"workload_api"` // unix:///path, with source: workload_api
}

// Identity sources.
const (
	identityFiles       = "files"
	identityRenew       = "renew"
	identityWorkloadAPI = "workload_api"
)

// gateTPM is identity.tpm: the attester of a gate that renews its own identity (the
// same choices as `warden enroll --tpm`).
type gateTPM struct {
	Device     string   `yaml:"device"` // sim, device (/dev/tpmrm0) or a device path
	Seed       int64    `yaml:"seed"`   // simulator seed
	Binary     string   `yaml:"binary"` // measured into PCR 23; default this executable
	Configs    []string `yaml:"configs"`
	Manifests  []string `yaml:"manifests"`
	Provenance string   `yaml:"provenance"`
}

func (id *gateIdentity) source() string {
	if id.Source == "" {
		return identityFiles
	}
	return id.Source
}

// check validates the block against the rest of the file (no disk access).
func (id *gateIdentity) check(f *gateFile) error {
	if (id.source() == identityWorkloadAPI) != (id.WorkloadAPI != "") {
		return errors.New("workload_api (a unix:///path socket) goes with source: workload_api, and only with it")
	}
	switch id.source() {
	case identityFiles, identityWorkloadAPI:
		if id.TPM != nil {
			return errors.New("tpm is for source: renew; with source: " + id.source() + " the process that holds the SVID attests")
		}
		if id.WorkloadAPI != "" && !strings.HasPrefix(id.WorkloadAPI, "unix:") {
			return fmt.Errorf("workload_api %q: want unix:///path", id.WorkloadAPI)
		}
	case identityRenew:
		if f.Server == "" {
			return errors.New("source: renew needs server")
		}
		if f.Mode == gate.ModeOutbound {
			return errors.New("source: renew is refused in outbound mode: an outbound gate signs with the agent's own SVID, which only the agent's `warden enroll --watch` renews")
		}
		if id.TPM != nil && id.TPM.Device == "" {
			return errors.New("tpm.device is required (sim, device or a device path)")
		}
	default:
		return fmt.Errorf("source %q: want files, renew or workload_api", id.Source)
	}
	return nil
}

// gateSVID is the gate's identity, whichever its source.
type gateSVID interface {
	x509svid.Source
	x509bundle.Source
	HTTPClient() *http.Client
	// Run keeps the identity current until ctx ends: reloads files, or renews. An error
	// means the gate cannot go on (renewal refused).
	Run(ctx context.Context) error
	// Reload re-reads svid_dir now (files) or does nothing (renew).
	Reload() (bool, error)
}

// fileIdentity and renewIdentity adapt the two sdk sources to gateSVID.
type fileIdentity struct{ *sdk.FileSource }

type renewIdentity struct{ *sdk.Source }

func (renewIdentity) Reload() (bool, error) { return false, nil }

// openGateIdentity opens the SVID source gate.yaml names and checks whose identity it
// is: an outbound gate must hold self's (the agent's) SVID; an inbound or legacy gate
// self's or a /gate/ identity of the same trust domain; a gate that renews, only a /gate/
// identity. It returns the source, its SPIFFE ID and a close function.
func openGateIdentity(ctx context.Context, f *gateFile, log *slog.Logger) (gateSVID, spiffeid.ID, func(), error) {
	self := spiffeid.RequireFromString(f.Self)
	var src gateSVID
	var id spiffeid.ID
	closeFn := func() {}
	switch f.Identity.source() {
	case identityFiles:
		if err := waitForSVIDFiles(ctx, f.SVIDDir, log); err != nil {
			return nil, id, nil, err
		}
		fs, err := sdk.OpenFileSource(sdk.FileSourceConfig{Dir: f.SVIDDir, Logger: log})
		if err != nil {
			return nil, id, nil, fmt.Errorf("svid_dir: %w", err)
		}
		src, id = fileIdentity{fs}, fs.ID()
	case identityRenew:
		svid, bundle, err := sdk.LoadFiles(f.SVIDDir)
		if err != nil {
			return nil, id, nil, fmt.Errorf("svid_dir: %w (enrol the gate first: warden enroll --token ... --out %s)", err, f.SVIDDir)
		}
		id = svid.ID
		if !isGateID(id) {
			return nil, id, nil, fmt.Errorf("identity.source renew: %s holds %s, not a /gate/ identity: a gate never renews its agent's SVID; leave identity.source at files and run `warden enroll --watch` for the agent", f.SVIDDir, id)
		}
		cfg := sdk.SourceConfig{ServerURL: f.Server, SVID: svid, Bundle: bundle, Dir: f.SVIDDir, Logger: log}
		if t := f.Identity.TPM; t != nil {
			tpm, err := sdk.OpenTPM(sdk.TPMConfig{TPM: t.Device, SimSeed: t.Seed, Binary: t.Binary, Configs: t.Configs,
				Manifests: t.Manifests, Provenance: t.Provenance})
			if err != nil {
				return nil, id, nil, fmt.Errorf("identity.tpm: %w", err)
			}
			cfg.Attester = tpm
			closeFn = func() { _ = tpm.Close() }
		}
		s, err := sdk.NewSource(cfg)
		if err != nil {
			closeFn()
			return nil, id, nil, err
		}
		src = renewIdentity{Source: s}
	case identityWorkloadAPI:
		ws, err := openWorkloadIdentity(f.Identity.WorkloadAPI)
		if err != nil {
			return nil, id, nil, err
		}
		sv, _ := ws.GetX509SVID()
		src, id, closeFn = ws, sv.ID, func() { _ = ws.Close() }
	}
	if err := checkGateID(f.Mode, self, id, f.SVIDDir); err != nil {
		closeFn()
		return nil, id, nil, err
	}
	if f.Approvals.ControlPlane && !isGateID(id) {
		closeFn()
		return nil, id, nil, fmt.Errorf("approvals.control_plane needs a /gate/ identity in svid_dir (warden entry create --kind gate --guards %s), not %s", lastPathSegment(self), id)
	}
	return src, id, closeFn, nil
}

// waitForSVIDFiles waits until svid_dir holds the SVID files: at boot the process that
// writes them (enroll --watch, a sidecar) may start after the gate. It logs every 30 s
// while waiting and returns ctx's error if ctx ends first.
func waitForSVIDFiles(ctx context.Context, dir string, log *slog.Logger) error {
	start, logged := time.Now(), time.Time{}
	for {
		missing := ""
		for _, n := range []string{sdk.SVIDFile, sdk.KeyFile, sdk.BundleFile} {
			if _, err := os.Stat(filepath.Join(dir, n)); errors.Is(err, os.ErrNotExist) {
				missing = n
				break
			}
		}
		if missing == "" {
			return nil
		}
		if time.Since(logged) >= 30*time.Second {
			logged = time.Now()
			log.Warn("gate: waiting for the SVID files (is `warden enroll --watch --out DIR` running?)", "dir", dir, "missing", missing,
				"waited", time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("svid_dir %s: no %s: %w", dir, missing, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// checkGateID enforces whose SVID a gate of mode may present.
func checkGateID(mode string, self, id spiffeid.ID, dir string) error {
	if id.TrustDomain() != self.TrustDomain() {
		return fmt.Errorf("%s holds %s, of another trust domain than self (%s)", dir, id, self)
	}
	if id == self {
		return nil
	}
	if mode == gate.ModeOutbound {
		return fmt.Errorf("%s holds %s: an outbound gate signs intents as self (%s) with self's own SVID, written there by the agent's `warden enroll --watch`", dir, id, self)
	}
	if !isGateID(id) {
		return fmt.Errorf("%s holds %s: an inbound or legacy gate presents self's SVID (%s) or its own /gate/ identity", dir, id, self)
	}
	return nil
}

func isGateID(id spiffeid.ID) bool { return strings.HasPrefix(id.Path(), "/gate/") }

func lastPathSegment(id spiffeid.ID) string { return id.Path()[strings.LastIndex(id.Path(), "/")+1:] }
