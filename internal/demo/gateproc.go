package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/warden-a2a/warden/internal/proc"
)

// GateSpec is a `warden gate` to run: the keys every gate of the stack needs; YAML adds
// or overrides any other key of gate.yaml (docs/gate.md, "Configuration reference").
type GateSpec struct {
	Name     string // DIR/gates/NAME/gate.yaml; the child is "gate-NAME"
	Mode     string // inbound | outbound | legacy
	Self     string // SPIFFE ID the gate stands for (intent aud)
	SVIDDir  string // the SVID files the gate presents (an agent's enroll --watch directory)
	Upstream string // http://…, unix:///… (the agent), or https://… (outbound: the remote gate)
	Zone     string
	// YAML is more gate.yaml, merged over the generated file key by key (mappings merge,
	// anything else replaces), e.g. "outbound:\n  audience: spiffe://…\n".
	YAML string
}

// Gate is a running `warden gate`.
type Gate struct {
	GateSpec
	Addr   string // host:port (inbound, legacy) or the unix socket path (outbound)
	Config string // path of its gate.yaml
	Proc   *proc.Process
}

// Dir is DIR/gates/NAME.
func (s *Stack) gateDir(name string) string { return filepath.Join(s.Dir, "gates", name) }

// StartGate writes DIR/gates/NAME/gate.yaml and starts `warden gate --config` with it,
// returning once the gate serves and, for inbound and legacy gates, holds a trust state
// from the control plane. Inbound and legacy gates listen on a free loopback port,
// outbound gates on SockDir/NAME.sock (SO_PEERCRED: this user only).
func (s *Stack) StartGate(ctx context.Context, spec GateSpec) (*Gate, error) {
	g := &Gate{GateSpec: spec, Config: filepath.Join(s.gateDir(spec.Name), "gate.yaml")}
	if err := os.MkdirAll(s.gateDir(spec.Name), 0o700); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		listen := ""
		if spec.Mode == "outbound" {
			g.Addr = filepath.Join(s.SockDir, spec.Name+".sock")
			listen = "unix:" + g.Addr
		} else {
			var err error
			if g.Addr, err = freePort(); err != nil {
				return nil, err
			}
			listen = g.Addr
		}
		b, err := s.gateYAML(spec, listen)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(g.Config, b, 0o600); err != nil {
			return nil, err
		}
		started := time.Now()
		if g.Proc, err = s.Procs.Start("gate-"+spec.Name, []string{"gate", "--config", g.Config}); err != nil {
			return nil, err
		}
		if lastErr = s.waitGate(ctx, g, started); lastErr == nil {
			return g, nil
		}
		_ = g.Proc.Stop()
		if !strings.Contains(g.Proc.Log(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

// waitGate: the gate logs "gate: serving" once its listener is bound; an inbound or
// legacy gate is ready when it has also stored a trust state it verified (its
// trust_cache file is written on every document it accepts).
func (s *Stack) waitGate(ctx context.Context, g *Gate, started time.Time) error {
	if err := g.Proc.WaitLog(ctx, 60*time.Second, "gate: serving"); err != nil {
		return err
	}
	if g.Mode == "outbound" {
		return nil
	}
	cache := filepath.Join(s.gateDir(g.Name), "trust-state.json")
	return g.Proc.WaitFor(ctx, 60*time.Second, "gate "+g.Name+" to hold a trust state", func() (bool, error) {
		st, err := os.Stat(cache)
		return err == nil && !st.ModTime().Before(started.Add(-time.Second)), nil
	})
}

// gateYAML is the generated gate.yaml with spec.YAML merged over it.
func (s *Stack) gateYAML(spec GateSpec, listen string) ([]byte, error) {
	dir := s.gateDir(spec.Name)
	var b strings.Builder
	fmt.Fprintf(&b, "# %s gate of the Warden demo (docs/gate.md). Run: warden gate --config %s\n", spec.Mode, filepath.Join(dir, "gate.yaml"))
	fmt.Fprintf(&b, "mode: %s\nlisten: %s\nself: %s\nsvid_dir: %s\nserver: %s\nupstream: %s\n",
		spec.Mode, listen, spec.Self, spec.SVIDDir, s.URL, spec.Upstream)
	if spec.Zone != "" {
		fmt.Fprintf(&b, "zone: %s\n", spec.Zone)
	}
	if spec.Mode != "outbound" {
		fmt.Fprintf(&b, "trust_cache: %s\npolicy:\n  dir: %s\n", filepath.Join(dir, "trust-state.json"), s.PoliciesDir())
		if s.PolicyKey != "" {
			fmt.Fprintf(&b, "  central: true\n  public_key: %s\n", s.PolicyKey+".pub")
		}
		fmt.Fprintf(&b, "catalog: %s\n", s.CatalogFile())
	}
	fmt.Fprintf(&b, "audit:\n  spool_dir: %s\n", filepath.Join(dir, "audit-spool"))
	return mergeYAML([]byte(b.String()), []byte(spec.YAML))
}

// mergeYAML merges the mapping over into base, keeping base's key order and comments:
// mappings merge key by key, any other value of over replaces base's.
func mergeYAML(base, over []byte) ([]byte, error) {
	var bn, on yaml.Node
	if err := yaml.Unmarshal(base, &bn); err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(over)) != "" {
		if err := yaml.Unmarshal(over, &on); err != nil {
			return nil, fmt.Errorf("demo: gate YAML: %w", err)
		}
		if len(on.Content) != 1 || on.Content[0].Kind != yaml.MappingNode {
			return nil, errors.New("demo: gate YAML must be a mapping")
		}
		mergeMapping(bn.Content[0], on.Content[0])
	}
	return yaml.Marshal(&bn)
}

func mergeMapping(dst, src *yaml.Node) {
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		found := false
		for j := 0; j+1 < len(dst.Content); j += 2 {
			if dst.Content[j].Value != k.Value {
				continue
			}
			found = true
			if dst.Content[j+1].Kind == yaml.MappingNode && v.Kind == yaml.MappingNode {
				mergeMapping(dst.Content[j+1], v)
			} else {
				dst.Content[j+1] = v
			}
		}
		if !found {
			dst.Content = append(dst.Content, k, v)
		}
	}
}
