package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/warden-a2a/warden/internal/audit"
)

// Client asks one witness to cosign the log's checkpoints (audit.Cosigner). It
// remembers the size the witness last cosigned and learns it from a 409 when it does
// not know it (first call, another replica submitted meanwhile).
type Client struct {
	url string
	key note.Verifier
	hc  *http.Client

	mu   sync.Mutex
	size int64 // the witness's size as far as this client knows
}

var _ audit.Cosigner = (*Client)(nil)

// NewClient returns a client of the witness at baseURL (its prefix; add-checkpoint is
// baseURL + "/add-checkpoint") whose cosignatures verify with key
// (audit.NewCosignatureVerifier). hc nil: a client with a 10 s timeout.
func NewClient(baseURL string, key note.Verifier, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("witness: URL %q: want http(s)://host[:port][/prefix]", baseURL)
	}
	if !audit.IsCosignatureVerifier(key) {
		return nil, errors.New("witness: the witness key must be a cosignature/v1 verifier key")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{url: strings.TrimRight(baseURL, "/"), key: key, hc: hc}, nil
}

// Name is the witness's key name.
func (c *Client) Name() string { return c.key.Name() }

// AheadError: the witness has cosigned a larger checkpoint than the one submitted
// (another replica's, or — when the log is smaller than that — the log was truncated or
// rolled back).
type AheadError struct {
	Witness string
	Size    int64
}

// WitnessSize is the size the witness holds.
func (e *AheadError) WitnessSize() int64 { return e.Size }

func (e *AheadError) Error() string {
	return fmt.Sprintf("witness %s already cosigned size %d", e.Witness, e.Size)
}

// Cosign submits cp with a consistency proof from the witness's size (prove) and returns
// the witness's verified cosignature. A 409 naming another size is retried with a proof
// from that size, twice at most.
func (c *Client) Cosign(ctx context.Context, cp audit.Checkpoint, prove func(old int64) (tlog.TreeProof, error)) ([]audit.Cosignature, error) {
	c.mu.Lock()
	old := c.size
	c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if old > cp.Size {
			return nil, &AheadError{Witness: c.Name(), Size: old}
		}
		var proof tlog.TreeProof
		if old > 0 && old < cp.Size {
			p, err := prove(old)
			if err != nil {
				return nil, fmt.Errorf("witness %s: consistency proof %d→%d: %w", c.Name(), old, cp.Size, err)
			}
			proof = p
		}
		status, body, err := c.post(ctx, encodeRequest(old, proof, cp.Note))
		if err != nil {
			return nil, err
		}
		if status == http.StatusConflict && attempt < 2 {
			if n, ok := parseSize(body); ok && n != old {
				old = n
				c.setSize(n)
				continue
			}
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("witness %s refused the checkpoint of size %d (old %d): %d %s", c.Name(), cp.Size, old, status, strings.TrimSpace(string(body)))
		}
		cs, err := c.verify(cp.Note, body)
		if err != nil {
			return nil, err
		}
		c.setSize(cp.Size)
		return cs, nil
	}
}

func (c *Client) setSize(n int64) {
	c.mu.Lock()
	c.size = n
	c.mu.Unlock()
}

func parseSize(b []byte) (int64, bool) {
	s, ok := strings.CutSuffix(string(b), "\n")
	n, err := strconv.ParseInt(s, 10, 64)
	return n, ok && err == nil && n >= 0
}

// verify checks the witness's answer: signature lines, one of them by the witness's key
// over this checkpoint.
func (c *Client) verify(checkpoint, lines []byte) ([]audit.Cosignature, error) {
	sigs, err := audit.ParseSignatureLines(lines)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", c.Name(), err)
	}
	n, err := note.Open(append(append([]byte{}, checkpoint...), audit.SignatureLines(sigs)...), note.VerifierList(c.key))
	if err != nil {
		return nil, fmt.Errorf("witness %s: cosignature does not verify: %w", c.Name(), err)
	}
	var out []audit.Cosignature
	for _, s := range n.Sigs {
		t, err := audit.CosignatureTime(s)
		if err != nil {
			return nil, fmt.Errorf("witness %s: %w", c.Name(), err)
		}
		out = append(out, audit.Cosignature{Sig: s, Time: t})
	}
	return out, nil
}

func (c *Client) post(ctx context.Context, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+PathAddCheckpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("witness %s: %w", c.Name(), err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return 0, nil, fmt.Errorf("witness %s: %w", c.Name(), err)
	}
	return res.StatusCode, b, nil
}

// FetchLatest reads the newest cosigned checkpoint of origin from the witness at baseURL
// (GET /checkpoint?origin=...). The caller verifies it (audit.VerifyOptions.Anchors).
func FetchLatest(ctx context.Context, hc *http.Client, baseURL, origin string) ([]byte, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+PathCheckpoint+"?origin="+url.QueryEscape(origin), nil)
	if err != nil {
		return nil, err
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", baseURL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", baseURL, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("witness %s: %d %s", baseURL, res.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, nil
}
