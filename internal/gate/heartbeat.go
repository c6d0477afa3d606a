package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/warden-a2a/warden/internal/api"
)

// HeartbeatConfig configures RunHeartbeat.
type HeartbeatConfig struct {
	URL      string       // control plane base URL
	Client   *http.Client // mTLS with the gate's SVID
	Interval time.Duration
	// Report builds the report at send time.
	Report func() api.GateReport
	Logger *slog.Logger
}

// RunHeartbeat posts the gate's report to POST /v1/gates/heartbeat every Interval and
// whenever now receives (a policy swap, a refused bundle), until ctx ends. Failures are
// logged at debug level and retried at the next beat: the heartbeat informs, it never
// decides.
func RunHeartbeat(ctx context.Context, cfg HeartbeatConfig, now <-chan struct{}) {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		if err := sendHeartbeat(ctx, cfg); err != nil && ctx.Err() == nil {
			cfg.Logger.Debug("gate: heartbeat failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-now:
		}
	}
}

func sendHeartbeat(ctx context.Context, cfg HeartbeatConfig) error {
	rep := cfg.Report()
	rep.IntervalMS = cfg.Interval.Milliseconds()
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(cfg.URL, "/")+api.PathGateHeartbeat, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		return fmt.Errorf("heartbeat: %d %s", res.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}
