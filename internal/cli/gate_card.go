package cli

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/warden-a2a/warden/internal/gate"
)

// gateCardFile is gate.yaml's card block: the agent card the inbound gate serves, signed,
// at /.well-known/agent-card.json (docs/gate.md, "Agent card").
//
//	source: upstream  the agent's own card, fetched from the upstream every refresh, with
//	                  its skills, capabilities and interfaces kept and every interface URL
//	                  moved to url (same path); only url and refresh may be set.
//	source: config    (default) the card these keys declare: one interface (url, binding)
//	                  or several (interfaces: [{binding, path}] under url).
type gateCardFile struct {
	Source      string              `yaml:"source"`
	URL         string              `yaml:"url"` // where callers reach the gate: https://host[:port]
	Refresh     time.Duration       `yaml:"refresh"`
	Name        string              `yaml:"name"`
	Description string              `yaml:"description"`
	Binding     string              `yaml:"binding"` // JSONRPC (default) or HTTP+JSON
	Interfaces  []gateCardInterface `yaml:"interfaces"`
	Version     string              `yaml:"version"`
	Streaming   bool                `yaml:"streaming"`
}

type gateCardInterface struct {
	Binding string `yaml:"binding"` // JSONRPC or HTTP+JSON
	Path    string `yaml:"path"`    // under url, e.g. / or /rest
}

func cardBinding(b string) (a2a.TransportProtocol, error) {
	switch strings.ToUpper(b) {
	case "", "JSONRPC":
		return a2a.TransportProtocolJSONRPC, nil
	case "HTTP+JSON":
		return a2a.TransportProtocolHTTPJSON, nil
	}
	return "", fmt.Errorf("binding %q: want JSONRPC or HTTP+JSON", b)
}

func (c *gateCardFile) check(mode string) error {
	if mode == gate.ModeOutbound {
		return errors.New("an outbound gate serves the remote agent's card (verified), not one of its own")
	}
	switch c.Source {
	case "upstream":
		u, err := url.Parse(c.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("url %q: source upstream needs the gate's public https://host[:port], no path", c.URL)
		}
		if c.Name != "" || c.Description != "" || c.Binding != "" || len(c.Interfaces) > 0 || c.Version != "" || c.Streaming {
			return errors.New("source upstream takes name, skills, capabilities and interfaces from the agent's card: set only url and refresh")
		}
	case "", "config":
		if c.Refresh != 0 {
			return errors.New("refresh is for source upstream")
		}
		if _, err := cardBinding(c.Binding); err != nil {
			return err
		}
		if len(c.Interfaces) > 0 && c.Binding != "" {
			return errors.New("binding or interfaces, not both")
		}
		for i, in := range c.Interfaces {
			if _, err := cardBinding(in.Binding); err != nil {
				return fmt.Errorf("interfaces[%d]: %w", i, err)
			}
			if !strings.HasPrefix(in.Path, "/") {
				return fmt.Errorf("interfaces[%d]: path must start with /", i)
			}
		}
	default:
		return fmt.Errorf("source %q: want config or upstream", c.Source)
	}
	return nil
}

// build returns the card to serve (source config) or the upstream card's settings.
func (c *gateCardFile) build() (*a2a.AgentCard, *gate.CardUpstream) {
	if c.Source == "upstream" {
		return nil, &gate.CardUpstream{PublicURL: c.URL, Refresh: c.Refresh}
	}
	var ifaces []*a2a.AgentInterface
	if len(c.Interfaces) == 0 {
		b, _ := cardBinding(c.Binding)
		ifaces = append(ifaces, a2a.NewAgentInterface(c.URL, b))
	}
	for _, in := range c.Interfaces {
		b, _ := cardBinding(in.Binding)
		ifaces = append(ifaces, a2a.NewAgentInterface(strings.TrimRight(c.URL, "/")+in.Path, b))
	}
	return &a2a.AgentCard{Name: c.Name, Description: c.Description, Version: c.Version,
		SupportedInterfaces: ifaces, DefaultInputModes: []string{"text"}, DefaultOutputModes: []string{"text"},
		Capabilities: a2a.AgentCapabilities{Streaming: c.Streaming}, Skills: []a2a.AgentSkill{}}, nil
}
