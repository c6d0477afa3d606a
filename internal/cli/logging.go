package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// logFlags are the logging flags of the long-running commands (server, gate, enroll).
type logFlags struct {
	format  string
	verbose bool
}

func (l *logFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&l.format, "log-format", envOr("WARDEN_LOG_FORMAT", "text"), "log format: text (logfmt) or json (one object per line)")
	cmd.Flags().BoolVarP(&l.verbose, "verbose", "v", false, "debug logging")
}

// logger returns the logger the flags ask for, writing to w.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if l.verbose {
		opts.Level = slog.LevelDebug
	}
	switch l.format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, exitCode(2, fmt.Errorf("--log-format %q: want text or json", l.format))
}

// onSIGHUP calls fn for every SIGHUP until ctx ends. A long-running command installs it
// so that `kill -HUP` reloads instead of killing the process (the default disposition).
func onSIGHUP(ctx context.Context, fn func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				fn()
			}
		}
	}()
}
