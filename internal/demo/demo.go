package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/warden-a2a/warden/internal/api"
)

// TrustDomain of the demo's supply chain.
const TrustDomain = "supplychain.example"

// Agents are the supply-chain agents the demo enrols, each with its own simulated TPM.
var Agents = []AgentSpec{
	{Name: "demand-planner", Role: "forecasting", Class: "advisory", Zone: "cloud", TPMSeed: 1000},
	{Name: "procurement", Role: "procurement", Class: "transactional", Zone: "cloud", TPMSeed: 1001},
	{Name: "vendor-portal", Role: "vendor", Class: "transactional", Zone: "partner-edge", TPMSeed: 1002},
	{Name: "logistics", Role: "shipping", Class: "transactional", Zone: "cloud", TPMSeed: 1003},
	{Name: "compliance", Role: "compliance", Class: "regulated", Zone: "cloud", TPMSeed: 1004},
	{Name: "payment-release", Role: "payments", Class: "regulated", Zone: "finance", TPMSeed: 1005},
}

// Config configures Run.
type Config struct {
	DataDir string    // the deployment: server, agents, gates, logs, report.json (see Stack)
	Out     io.Writer // the story as it runs, then the table
	Logger  *slog.Logger
	Exe     string // the warden executable the children run; default os.Executable()
}

// env is what the rows share: the running stack, the enrolled agents, the report.
type env struct {
	*Stack
	cfg    Config
	out    io.Writer
	log    *slog.Logger
	report Report
	agents map[string]*Agent
	vendor *tpmVendor // the TPM vendor whose EK roots the control plane trusts
	gates  *gateEnv   // set while the gate rows run
	// vendorGate is the address of vendor-portal's inbound gate, a child process that
	// runs until the stack closes (its agent stops with the gate rows).
	vendorGate string
}

// challengeTimeout is how long a demo agent has to answer a pushed challenge
// (`warden server --attest-challenge-timeout`).
const challengeTimeout = "2s"

// Run plays the story against child processes of the warden binary and writes
// DataDir/report.json. The returned report's OK says whether every step's observed
// outcome matched its expectation; err is for failures of the demo itself (it could not
// start, or it was interrupted).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	// A stand-in TPM vendor PKI: the control plane trusts its EK certificates.
	vendor, err := newTPMVendor("Demo TPM Vendor")
	if err != nil {
		return nil, err
	}
	roots := filepath.Join(cfg.DataDir, "tpm-vendor-roots.pem")
	if err := os.WriteFile(roots, vendor.pem(), 0o644); err != nil {
		return nil, err
	}
	st, err := StartStack(ctx, StackConfig{Dir: cfg.DataDir, Exe: cfg.Exe, Witness: true, CentralPolicy: true,
		ServerFlags: []string{"--attest-challenge-timeout", challengeTimeout, "--tpm-ek-roots", roots}})
	if err != nil {
		return nil, fmt.Errorf("demo: start the control plane: %w", err)
	}
	defer st.Close()
	e := &env{Stack: st, cfg: cfg, out: cfg.Out, log: cfg.Logger, agents: map[string]*Agent{}, vendor: vendor}
	fmt.Fprintf(e.out, "Warden demo: every component is a child process of this binary; commands below are\n"+
		"copyable with DIR=%s (logs in $DIR/logs).\n\n  $ %s\n  $ %s &\n  $ %s &\n  $ %s\n\n", st.Dir, st.KeysCommand, st.Witness.Command, st.Server.Command, st.PushCommand)

	e.printInventory()
	// The story in order: identities, the purchase-order workflow through the gates, then
	// the runtime-drift attacks (they leave agents quarantined or suspended), and the
	// audit steps close it, verifying what the others recorded.
	for _, group := range [][]func(context.Context, *env){identitySteps, {gateStory}, {partnerStory}, {liveStory}, attestSteps, auditSteps} {
		for _, step := range group {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("demo: interrupted: %w", ctx.Err())
			}
			step(ctx, e)
		}
	}

	e.report.OK = len(e.report.Steps) > 0
	for _, s := range e.report.Steps {
		e.report.OK = e.report.OK && s.Observed == s.Expected
	}
	b, _ := json.MarshalIndent(&e.report, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	printTable(e.out, &e.report)
	if failed := st.FailedChildren(); failed != "" {
		fmt.Fprintf(e.out, "\n%s", failed)
	}
	return &e.report, nil
}

// record appends a row to the report and prints it with its commands.
func (e *env) record(s Step) {
	e.report.Steps = append(e.report.Steps, s)
	mark := "ok  "
	if s.Observed != s.Expected {
		mark = "FAIL"
	}
	fmt.Fprintf(e.out, "%s %-8s %s\n", mark, s.Kind, s.Name)
	for _, c := range strings.Split(s.Command, "\n") {
		if c != "" {
			fmt.Fprintf(e.out, "       $ %s\n", c)
		}
	}
	if s.Observed != s.Expected {
		fmt.Fprintf(e.out, "       expected %s, observed %s: %s\n", s.Expected, s.Observed, s.Reason)
	}
}

// outcome turns an error into a step's observed outcome and reason.
func outcome(err error) (observed, reason, decisionID string) {
	if err == nil {
		return "allow", "", ""
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return "deny", ae.Code + ": " + ae.Message, ae.RequestID
	}
	return "deny", err.Error(), ""
}

// commands joins shown commands into a Step's Command.
func commands(cs ...string) string {
	var out []string
	for _, c := range cs {
		if c != "" {
			out = append(out, c)
		}
	}
	return strings.Join(out, "\n")
}

func printTable(w io.Writer, r *Report) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tKIND\tSTEP\tEXPECTED\tOBSERVED\tREASON")
	for _, s := range r.Steps {
		mark := "ok"
		if s.Observed != s.Expected {
			mark = "FAIL"
		}
		reason := s.Reason
		if len(reason) > 90 {
			reason = reason[:87] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", mark, s.Kind, s.Name, s.Expected, s.Observed, reason)
	}
	_ = tw.Flush()
	verdict := "every step behaved as expected"
	if !r.OK {
		verdict = "SOME STEPS DID NOT BEHAVE AS EXPECTED"
	}
	fmt.Fprintf(w, "\n%d steps: %s (commands of each step in report.json)\n", len(r.Steps), verdict)
}
