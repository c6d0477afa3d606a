package truststate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	URL         string       // control plane base URL
	Client      *http.Client // mTLS client presenting an SVID of the trust domain
	Bundle      x509bundle.Source
	TrustDomain spiffeid.TrustDomain
	Now         func() time.Time
	// PollInterval is how often the document is fetched when the stream is down;
	// default 5s. The stream itself pushes each version at once.
	PollInterval time.Duration
	// OnAccept, when set, is called with the bytes of each document Accept makes
	// current, e.g. so a gate can persist the last verified state for a restart
	// while the control plane is down.
	OnAccept func(signed []byte, doc *Document)
}

// ErrRollback is returned (and the document ignored) when a verified document is older
// than the one the follower already holds.
var ErrRollback = errors.New("truststate: document older than the one held")

// Follower keeps the newest verified trust state of a relying party (a gate, an agent):
// it follows the control plane's watch stream, verifies every document, and never goes
// back to an older version. It falls back to polling while the stream is down.
type Follower struct {
	cfg FollowerConfig

	mu       sync.Mutex
	doc      *Document
	verified time.Time // when the newest document was last confirmed by the control plane
}

// NewFollower returns a follower holding nothing yet.
func NewFollower(cfg FollowerConfig) *Follower {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Second
	}
	return &Follower{cfg: cfg}
}

// Current returns the newest verified document (nil before the first) and how long ago
// the control plane last confirmed it.
func (f *Follower) Current() (*Document, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.doc == nil {
		return nil, 0
	}
	return f.doc, f.cfg.Now().Sub(f.verified)
}

// Accept verifies signed and makes it current if it is not older than the one held. It
// returns the document now current.
func (f *Follower) Accept(signed []byte) (*Document, error) {
	doc, err := Verify(signed, f.cfg.Bundle, f.cfg.TrustDomain, f.cfg.Now())
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.doc != nil && doc.Version < f.doc.Version {
		return f.doc, fmt.Errorf("%w: got version %d, hold %d", ErrRollback, doc.Version, f.doc.Version)
	}
	f.doc = doc
	f.verified = f.cfg.Now()
	if f.cfg.OnAccept != nil {
		f.cfg.OnAccept(signed, doc)
	}
	return doc, nil
}

// Run follows the stream until ctx ends, calling onUpdate (if set) with each new verified
// version. Errors reconnect with backoff; Run returns only when ctx ends.
func (f *Follower) Run(ctx context.Context, onUpdate func(*Document)) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := f.stream(ctx, onUpdate)
		if ctx.Err() != nil {
			break
		}
		_ = err // the stream dropped: poll once, then reconnect
		if err := f.poll(ctx, onUpdate); err == nil {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, f.cfg.PollInterval)
	}
	return nil
}

func (f *Follower) deliver(signed []byte, onUpdate func(*Document)) error {
	before, _ := f.Current()
	doc, err := f.Accept(signed)
	if err != nil {
		return err
	}
	if onUpdate != nil && (before == nil || doc.Version > before.Version) {
		onUpdate(doc)
	}
	return nil
}

func (f *Follower) poll(ctx context.Context, onUpdate func(*Document)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(f.cfg.URL, "/")+"/v1/trust-state", nil)
	if err != nil {
		return err
	}
	res, err := f.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("truststate: poll: status %d", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxSize+1))
	if err != nil {
		return err
	}
	return f.deliver(body, onUpdate)
}

func (f *Follower) stream(ctx context.Context, onUpdate func(*Document)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(f.cfg.URL, "/")+"/v1/trust-state/watch", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	// The client's overall timeout would cut the stream: use its transport without it.
	client := *f.cfg.Client
	client.Timeout = 0
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("truststate: watch: status %d", res.StatusCode)
	}
	return ReadEvents(res.Body, func(ev Event) error {
		if ev.Type != "trust-state" {
			return nil
		}
		if err := f.deliver([]byte(ev.Data), onUpdate); err != nil && !errors.Is(err, ErrRollback) {
			return err // a bad document ends this stream; Run reconnects
		}
		return nil
	})
}

// Event is one server-sent event (HTML Living Standard, "Server-sent events" §9.2.6).
type Event struct {
	Type string
	ID   string
	Data string
}

// maxEventSize bounds one event; a longer one ends the stream with an error.
const maxEventSize = MaxSize + 1024

// ReadEvents parses a text/event-stream from r and calls fn for each event, until r ends,
// fn fails, or an event grows beyond the size limit.
func ReadEvents(r io.Reader, fn func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventSize)
	var ev Event
	var data strings.Builder
	hasData := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" { // dispatch
			if hasData {
				ev.Data = data.String()
				if ev.Type == "" {
					ev.Type = "message"
				}
				if err := fn(ev); err != nil {
					return err
				}
			}
			ev, hasData = Event{}, false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // comment (keep-alive)
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Type = value
		case "id":
			ev.ID = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			if data.Len()+len(value) > maxEventSize {
				return errors.New("truststate: event too large")
			}
			data.WriteString(value)
			hasData = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("truststate: stream: %w", err)
	}
	return io.ErrUnexpectedEOF
}
