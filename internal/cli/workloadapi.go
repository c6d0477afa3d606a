package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/warden-a2a/warden/internal/workload"
	"github.com/warden-a2a/warden/sdk"
)

// workloadAPIFlags: warden enroll --watch --workload-api (docs/workload-api.md).
type workloadAPIFlags struct {
	addr  string
	uids  []uint
	gids  []uint
	paths []string
}

func (w *workloadAPIFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&w.addr, "workload-api", "", "serve the SPIFFE Workload API on this socket, e.g. unix:///run/warden/agent.sock (needs --watch)")
	f.UintSliceVar(&w.uids, "workload-uid", nil, "uid(s) of the processes that get the identity over the Workload API")
	f.UintSliceVar(&w.gids, "workload-gid", nil, "gid(s) of the processes that get the identity")
	f.StringSliceVar(&w.paths, "workload-path", nil, "executable path(s) (/proc/PID/exe) of the processes that get the identity")
}

func (w *workloadAPIFlags) selector() workload.Selector {
	var s workload.Selector
	for _, u := range w.uids {
		s.UIDs = append(s.UIDs, uint32(u))
	}
	for _, g := range w.gids {
		s.GIDs = append(s.GIDs, uint32(g))
	}
	s.Paths = w.paths
	return s
}

func (w *workloadAPIFlags) check(watch bool) error {
	if w.addr == "" {
		if len(w.uids)+len(w.gids)+len(w.paths) > 0 {
			return errors.New("--workload-uid, --workload-gid and --workload-path need --workload-api")
		}
		return nil
	}
	if !watch {
		return errors.New("--workload-api needs --watch: the socket is served while the SVID is kept fresh")
	}
	return w.selector().Validate()
}

// serve runs the SVID renewal, the Workload API's bundle sources and the socket until
// ctx ends or renewal is refused.
func (w *workloadAPIFlags) serve(ctx context.Context, src *sdk.Source, serverURL string, rotated *workload.Notifier, log *slog.Logger) error {
	as, err := workload.NewAgentSource(workload.AgentConfig{Source: src, ServerURL: serverURL, Changes: rotated, Logger: log})
	if err != nil {
		return err
	}
	ws, err := workload.New(workload.Config{Source: as, Selector: w.selector(), Logger: log})
	if err != nil {
		return err
	}
	ln, err := workload.Listen(w.addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 2)
	go func() { as.Run(ctx); done <- nil }()
	go func() { done <- ws.Serve(ctx, ln) }()
	log.Info("workload api: serving", "socket", w.addr, "selector", w.selector().String())
	err = src.Run(ctx)
	cancel()
	<-done
	if serr := <-done; err == nil && serr != nil {
		err = fmt.Errorf("workload api: %w", serr)
	}
	return err
}
