package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/ca"
	"github.com/warden-a2a/warden/internal/witness"
)

// Files of a witness's data directory.
const (
	witnessKeyFile  = "witness.key"  // signer key, 0600, never logged
	witnessVKeyFile = "witness.vkey" // C2SP vkey (type 0x04): give it to servers and auditors
	witnessDBFile   = "witness.db"
	witnessURLFile  = "url" // the URL it listens on, written at start
)

func newWitnessCmd() *cobra.Command {
	var (
		dataDir, listen, name string
		logKeys               []string
		verbose               bool
	)
	cmd := &cobra.Command{
		Use:   "witness --log-key FILE [--log-key FILE...]",
		Short: "Run a transparency-log witness that cosigns the audit log's checkpoints (C2SP tlog-witness)",
		Long: `Run a witness of the control plane's audit log, outside its database.

The witness keeps, for each log it follows, the newest checkpoint it cosigned (DATA_DIR/witness.db)
and cosigns a new one only when the log's key signed it and an RFC 6962 consistency proof
shows it extends the old one: a log truncated, rolled back or forked behind the control
plane's back is refused (409/422) and can never be cosigned again. It serves
POST /add-checkpoint (C2SP tlog-witness) and GET /checkpoint?origin=ORIGIN (its newest
cosigned checkpoint, which 'warden audit verify --witness-url' reads).

First start creates the witness key: DATA_DIR/witness.key (0600) and DATA_DIR/witness.vkey,
the verifier key to give to 'warden server --witness URL=FILE' and to auditors
('warden audit verify --witness-key FILE'). --log-key is each followed log's verifier key
(the server's DATA_DIR/audit/verifier.key; 'warden audit keys' makes it before the first
server start).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if len(logKeys) == 0 {
				return exitCode(2, errors.New("at least one --log-key is required"))
			}
			var keys []note.Verifier
			for _, f := range logKeys {
				v, err := audit.LoadVerifier(f)
				if err != nil {
					return exitCode(2, err)
				}
				keys = append(keys, v)
			}
			signer, err := loadOrCreateWitnessKey(dataDir, name)
			if err != nil {
				return exitCode(2, err)
			}
			store, err := witness.OpenStore(cmd.Context(), filepath.Join(dataDir, witnessDBFile))
			if err != nil {
				return err
			}
			defer store.Close()
			w, err := witness.New(witness.Config{Signer: signer, Logs: witness.LogsOf(keys...), Store: store, Logger: log})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			url := "http://" + ln.Addr().String()
			if err := ca.WriteFileAtomic(filepath.Join(dataDir, witnessURLFile), []byte(url+"\n"), 0o644); err != nil {
				ln.Close()
				return err
			}
			origins := make([]string, 0, len(keys))
			for _, k := range keys {
				origins = append(origins, k.Name())
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "warden witness: %s, name %s, verifier key %s, following %s\n",
				url, signer.Name(), filepath.Join(dataDir, witnessVKeyFile), strings.Join(origins, ", "))
			return serveHTTP(cmd.Context(), ln, w.Handler(), log)
		},
	}
	f := cmd.Flags()
	host, _ := os.Hostname()
	f.StringVar(&dataDir, "data-dir", envOr("WARDEN_WITNESS_DATA_DIR", "warden-witness"), "witness data directory (key, witness.db)")
	f.StringVar(&listen, "listen", envOr("WARDEN_WITNESS_LISTEN", "127.0.0.1:7380"), "address to listen on (plain HTTP: the protocol's security is in the signatures)")
	f.StringVar(&name, "name", "warden-witness/"+host, "witness name for a new key (a schema-less URL naming this witness; ignored once the key exists)")
	f.StringArrayVar(&logKeys, "log-key", nil, "verifier key file of a log to follow (repeatable)")
	f.BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	return cmd
}

// loadOrCreateWitnessKey reads DIR/witness.key, generating it (and witness.vkey) with
// name on first use.
func loadOrCreateWitnessKey(dir, name string) (*audit.CosignatureSigner, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	kp := filepath.Join(dir, witnessKeyFile)
	b, err := os.ReadFile(kp)
	if errors.Is(err, os.ErrNotExist) {
		skey, vkey, err := audit.GenerateCosignerKey(name)
		if err != nil {
			return nil, err
		}
		if err := ca.WriteFileAtomic(kp, []byte(skey+"\n"), 0o600); err != nil {
			return nil, err
		}
		if err := ca.WriteFileAtomic(filepath.Join(dir, witnessVKeyFile), []byte(vkey+"\n"), 0o644); err != nil {
			return nil, err
		}
		b = []byte(skey)
	} else if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(kp); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v); want 0600", kp, fi.Mode().Perm())
	}
	s, err := audit.NewCosignatureSigner(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kp, err)
	}
	// The verifier key is derived again, so a crash between the two writes repairs itself.
	vp := filepath.Join(dir, witnessVKeyFile)
	if _, err := os.Stat(vp); errors.Is(err, os.ErrNotExist) {
		if err := ca.WriteFileAtomic(vp, []byte(s.VerifierKey()+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// serveHTTP serves h on ln until ctx ends, then shuts down within 5 s.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := hs.Shutdown(sctx)
		<-errc
		return err
	case err := <-errc:
		return err
	}
}
