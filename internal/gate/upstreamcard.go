package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
)

// CardUpstream makes an inbound gate serve the agent's own card: fetched from the
// upstream's /.well-known/agent-card.json (A2A 1.0 §8.2), its skills, capabilities and
// every interface it declares kept, each interface URL rewritten to PublicURL with the
// interface's own path (so JSON-RPC at / and HTTP+JSON under /rest both go through the
// gate), decorated (mtls, the intent extension) and re-signed by the gate.
type CardUpstream struct {
	// PublicURL is where callers reach this gate: https://host[:port], no path.
	PublicURL string
	// Refresh is how long a fetched card is served before the agent is asked again;
	// default 1 min. If the agent cannot be asked, the last card goes on being served.
	Refresh time.Duration
}

// maxUpstreamCard bounds the agent's card the gate reads.
const maxUpstreamCard = MaxCardSize

// upstreamCard fetches and caches the agent's card.
type upstreamCard struct {
	client  *http.Client
	url     string // upstream card URL
	public  *url.URL
	refresh time.Duration

	mu      sync.Mutex
	card    *a2a.AgentCard // decorated, rewritten; nil until first fetched
	fetched time.Time
}

func newUpstreamCard(cu *CardUpstream, target url.URL, rt http.RoundTripper) (*upstreamCard, error) {
	pub, err := url.Parse(cu.PublicURL)
	if err != nil || pub.Scheme != "https" || pub.Host == "" || (pub.Path != "" && pub.Path != "/") || pub.RawQuery != "" {
		return nil, fmt.Errorf("gate: card public URL %q: want https://host[:port] with no path", cu.PublicURL)
	}
	pub.Path = ""
	refresh := cu.Refresh
	if refresh <= 0 {
		refresh = time.Minute
	}
	return &upstreamCard{client: &http.Client{Transport: rt, Timeout: 10 * time.Second},
		url: target.JoinPath("/.well-known/agent-card.json").String(), public: pub, refresh: refresh}, nil
}

// get returns the card to serve: the cached one while fresh, else a new fetch; a failed
// fetch serves the cached card if there is one.
func (u *upstreamCard) get(ctx context.Context) (*a2a.AgentCard, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.card != nil && time.Since(u.fetched) < u.refresh {
		return u.card, nil
	}
	c, err := u.fetch(ctx)
	if err != nil {
		if u.card != nil {
			return u.card, nil
		}
		return nil, err
	}
	u.card, u.fetched = c, time.Now()
	return c, nil
}

func (u *upstreamCard) fetch(ctx context.Context) (*a2a.AgentCard, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.url, nil)
	if err != nil {
		return nil, err
	}
	res, err := u.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the agent's card could not be fetched from the upstream: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the agent answered %d for /.well-known/agent-card.json: it serves no card (declare one in gate.yaml card:)", res.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxUpstreamCard+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxUpstreamCard {
		return nil, errors.New("the agent's card is larger than 256 KiB")
	}
	var card a2a.AgentCard
	if err := json.Unmarshal(b, &card); err != nil {
		return nil, fmt.Errorf("the agent's card is not an A2A agent card: %w", err)
	}
	if len(card.SupportedInterfaces) == 0 {
		return nil, errors.New("the agent's card declares no interface")
	}
	return decorateCard(rewriteInterfaces(&card, u.public)), nil
}

// rewriteInterfaces returns card with every interface URL pointing at public with the
// interface's own path (and query): what the agent serves at /rest, the gate serves at
// /rest too and forwards there.
func rewriteInterfaces(card *a2a.AgentCard, public *url.URL) *a2a.AgentCard {
	c := *card
	c.SupportedInterfaces = make([]*a2a.AgentInterface, 0, len(card.SupportedInterfaces))
	for _, in := range card.SupportedInterfaces {
		if in == nil {
			continue
		}
		out := *in
		nu := *public
		if iu, err := url.Parse(in.URL); err == nil {
			nu.Path, nu.RawPath, nu.RawQuery = iu.Path, iu.RawPath, iu.RawQuery
		}
		if nu.Path == "" {
			nu.Path = "/"
		}
		out.URL = strings.TrimSuffix(nu.String(), "?")
		c.SupportedInterfaces = append(c.SupportedInterfaces, &out)
	}
	return &c
}
