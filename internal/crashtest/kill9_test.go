package crashtest_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/warden-a2a/warden/internal/adminclient"
	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/proc"
	"github.com/warden-a2a/warden/internal/store/storetest"
	"github.com/warden-a2a/warden/sdk"
)

// kills is how many times a campaign SIGKILLs the server.
const kills = 20

const trustDomain = "supplychain.example"

// TestKill9SQLite and TestKill9Postgres: `warden server` (a child process) is killed
// with SIGKILL 20 times at random moments under mixed admin load (entries created,
// updated and deleted, join tokens, revoke/quarantine/suspend/restore, re-attestation
// challenges, approvers added and deleted, CA rotations, kill switches engaged and
// released, incidents, zone states; the server's own challenge-deadline enforcement and
// kill-switch expiry run meanwhile) and audit shipping from a gate
// identity, and restarted each time. Afterwards every acknowledged change is in the
// database with its event in the audit log, no change in the database lacks its event,
// the outbox is empty and `warden audit verify` passes.
func TestKill9SQLite(t *testing.T) { runCampaign(t, "") }

func TestKill9Postgres(t *testing.T) { runCampaign(t, storetest.PostgresDSN(t)) }

// ack is one change the server acknowledged (answered 2xx).
type ack struct {
	what    string     // entry_created, entry_deleted, entry_updated, token, trust, approver_added, approver_deleted, rotate, ship
	subject string     // SPIFFE ID, "serial:HEX", approver name
	op      string     // trust: revoke | quarantine | suspend | restore | challenge; live: the outcome
	kind    audit.Kind // live: kill_switch, incident_mode, zone
	version int64      // trust: the trust-state version answered
	sha     string     // entry_updated: SHA-256 of the attrs sent
	ids     []string
}

type clients struct {
	admin *adminclient.Client
	sink  audit.HTTPSink
}

type campaign struct {
	t      *testing.T
	dir    string
	dsn    string
	g      *proc.Group
	srv    *proc.Process
	shipTo *tls.Config
	cur    atomic.Pointer[clients]

	mu        sync.Mutex
	acks      []ack
	entries   []string // names acknowledged created and not (acknowledged) deleted
	approvers []string
	switches  []string        // kill switch ids engaged (and maybe expired since)
	attempted map[string]bool // every entry and approver name tried
	seq       atomic.Int64
	pubPEM    string
}

func runCampaign(t *testing.T, dsn string) {
	if testing.Short() {
		t.Skip("the kill -9 campaign takes a minute")
	}
	dir := t.TempDir()
	g, err := proc.New(proc.Config{LogDir: filepath.Join(dir, "logs")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	c := &campaign{t: t, dir: filepath.Join(dir, "server"), dsn: dsn, g: g, attempted: map[string]bool{}}
	_, pub, err := approval.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c.pubPEM = string(pub)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	args := []string{"server", "--data-dir", c.dir, "--listen", "127.0.0.1:0", "--trust-domain", trustDomain,
		"--attest-challenge-timeout", "1s"}
	if dsn != "" {
		args = append(args, "--store", dsn)
	}
	_ = os.MkdirAll(c.dir, 0o700)
	c.srv, err = g.Start("server", args)
	if err != nil {
		t.Fatal(err)
	}
	c.ready(ctx)
	initial := intermediateSerial(t, c.dir)
	c.enrolShipper(ctx)

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	load, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.adminLoad(load, rand.New(rand.NewPCG(seed, uint64(w)+2)))
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); c.shipLoad(load) }()

	start := time.Now()
	for i := range kills {
		time.Sleep(time.Duration(150+rng.IntN(600)) * time.Millisecond)
		if err := c.srv.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", i, err)
		}
		<-c.srv.Done()
		_ = os.Remove(filepath.Join(c.dir, "admin", "server_url"))
		if err := c.srv.Restart(); err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		c.ready(ctx)
	}
	time.Sleep(300 * time.Millisecond)
	stopLoad()
	wg.Wait()
	if err := c.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	byWhat := map[string]int{}
	for _, a := range c.acks {
		byWhat[a.what+" "+string(a.kind)+" "+a.op]++
	}
	t.Logf("%d kills in %s; %d acknowledged changes: %v", kills, time.Since(start).Round(time.Millisecond), len(c.acks), byWhat)
	c.mu.Unlock()

	verify := []string{"audit", "verify", "--data-dir", c.dir}
	if dsn != "" {
		verify = append(verify, "--store", dsn)
	}
	if r := g.Run(ctx, verify); r.Err != nil {
		t.Errorf("warden audit verify after the campaign: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
	c.check(ctx, initial)
	if t.Failed() {
		var lines []string
		b, _ := os.ReadFile(c.srv.LogPath())
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "level=ERROR") || strings.Contains(l, "outbox") || strings.HasPrefix(l, "===") {
				lines = append(lines, l)
			}
		}
		t.Logf("server log (errors, outbox, starts):\n%s", strings.Join(lines[max(0, len(lines)-60):], "\n"))
	}
}

// ready waits until the (re)started server answers its admin API and points the load at it.
func (c *campaign) ready(ctx context.Context) {
	c.t.Helper()
	urlFile := filepath.Join(c.dir, "admin", "server_url")
	var cl *adminclient.Client
	err := c.srv.WaitFor(ctx, 60*time.Second, "server answers", func() (bool, error) {
		b, err := os.ReadFile(urlFile)
		if err != nil {
			return false, nil
		}
		if cl == nil || cl.BaseURL != strings.TrimSpace(string(b)) {
			if cl, err = adminclient.Load(filepath.Join(c.dir, "admin"), strings.TrimSpace(string(b))); err != nil {
				return false, nil
			}
		}
		_, err = cl.ListEntries(ctx)
		return err == nil, nil
	})
	if err != nil {
		c.t.Fatalf("%v\n%s", err, c.srv.Tail(30))
	}
	next := &clients{admin: cl}
	if c.shipTo != nil {
		next.sink = audit.HTTPSink{URL: cl.BaseURL, Client: &http.Client{Timeout: 30 * time.Second,
			Transport: &http.Transport{TLSClientConfig: c.shipTo}}}
	}
	if old := c.cur.Swap(next); old != nil {
		old.admin.HTTP.CloseIdleConnections()
		if old.sink.Client != nil {
			old.sink.Client.CloseIdleConnections()
		}
	}
}

// enrolShipper enrols the gate identity that ships decision events.
func (c *campaign) enrolShipper(ctx context.Context) {
	c.t.Helper()
	cl := c.cur.Load()
	if _, err := cl.admin.CreateEntry(ctx, api.Entry{Name: "shipper", Kind: "gate", Role: "gate", Class: "advisory", Zone: "z"}); err != nil {
		c.t.Fatal(err)
	}
	tok, err := cl.admin.CreateToken(ctx, "shipper", time.Minute)
	if err != nil {
		c.t.Fatal(err)
	}
	svid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: cl.admin.BaseURL, Token: tok.Token})
	if err != nil {
		c.t.Fatal(err)
	}
	td := spiffeid.RequireTrustDomainFromString(trustDomain)
	c.shipTo = tlsconfig.MTLSClientConfig(svid, bundle, tlsconfig.AuthorizeID(spiffeid.RequireFromPath(td, "/warden/server")))
	c.cur.Store(&clients{admin: cl.admin, sink: audit.HTTPSink{URL: cl.admin.BaseURL,
		Client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: c.shipTo}}}})
	c.record(ack{what: "entry_created", subject: "spiffe://" + trustDomain + "/gate/shipper"})
	c.record(ack{what: "token", subject: "spiffe://" + trustDomain + "/gate/shipper"})
}

func (c *campaign) record(a ack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acks = append(c.acks, a)
	switch a.what {
	case "entry_created":
		if name, ok := strings.CutPrefix(a.subject, "spiffe://"+trustDomain+"/agent/"); ok {
			c.entries = append(c.entries, name)
		}
	case "entry_deleted":
		c.entries = remove(c.entries, strings.TrimPrefix(a.subject, "spiffe://"+trustDomain+"/agent/"))
	case "approver_added":
		c.approvers = append(c.approvers, a.subject)
	case "approver_deleted":
		c.approvers = remove(c.approvers, a.subject)
	}
}

func remove(s []string, v string) []string {
	for i, x := range s {
		if x == v {
			return append(s[:i:i], s[i+1:]...)
		}
	}
	return s
}

// pick returns a random element of the list under the lock, or "".
func (c *campaign) pick(rng *rand.Rand, list *[]string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(*list) == 0 {
		return ""
	}
	return (*list)[rng.IntN(len(*list))]
}

func agentID(name string) string { return "spiffe://" + trustDomain + "/agent/" + name }

// adminLoad runs random admin changes until ctx ends. A change whose answer was lost
// (the server died) is not recorded: it may or may not have been made.
func (c *campaign) adminLoad(ctx context.Context, rng *rand.Rand) {
	for ctx.Err() == nil {
		cl := c.cur.Load().admin
		var err error
		var a ack
		switch n := rng.IntN(112); {
		case n < 25:
			name := fmt.Sprintf("a-%d", c.seq.Add(1))
			c.mu.Lock()
			c.attempted[name] = true
			c.mu.Unlock()
			_, err = cl.CreateEntry(ctx, api.Entry{Name: name, Role: "r", Class: "advisory", Zone: "z"})
			a = ack{what: "entry_created", subject: agentID(name)}
		case n < 33:
			name := c.pick(rng, &c.entries)
			if name == "" {
				continue
			}
			err = cl.DeleteEntry(ctx, name)
			a = ack{what: "entry_deleted", subject: agentID(name)}
		case n < 43:
			name := c.pick(rng, &c.entries)
			if name == "" {
				continue
			}
			attrs := fmt.Sprintf(`{"owner":"o-%d"}`, rng.IntN(1e9))
			_, err = cl.SetEntryAttrs(ctx, name, json.RawMessage(attrs))
			a = ack{what: "entry_updated", subject: agentID(name), sha: sha256Hex([]byte(attrs))}
		case n < 55:
			name := c.pick(rng, &c.entries)
			if name == "" {
				continue
			}
			_, err = cl.CreateToken(ctx, name, time.Hour)
			a = ack{what: "token", subject: agentID(name)}
		case n < 78:
			op := []string{"quarantine", "suspend", "restore", "revoke", "revoke-serial"}[rng.IntN(5)]
			change := api.TrustChange{ID: agentID(fmt.Sprintf("a-%d", 1+rng.Int64N(max(c.seq.Load(), 1)))), Reason: "campaign"}
			subject := change.ID
			if op == "revoke-serial" {
				op, change.ID, change.Serial = "revoke", "", fmt.Sprintf("%x", rng.Uint64())
				subject = "serial:" + change.Serial
			}
			var v int64
			v, err = cl.ChangeTrust(ctx, op, change)
			a = ack{what: "trust", op: op, subject: subject, version: v}
		case n < 84:
			name := c.pick(rng, &c.entries)
			if name == "" {
				continue
			}
			var res api.AdminChallengeResponse
			res, err = cl.Challenge(ctx, agentID(name), "campaign")
			a = ack{what: "trust", op: "challenge", subject: agentID(name), version: res.Version}
		case n < 92:
			name := fmt.Sprintf("p-%d", c.seq.Add(1))
			c.mu.Lock()
			c.attempted[name] = true
			c.mu.Unlock()
			_, err = cl.AddApprover(ctx, api.Approver{Name: name, PublicKey: c.pubPEM})
			a = ack{what: "approver_added", subject: name}
		case n < 98:
			name := c.pick(rng, &c.approvers)
			if name == "" {
				continue
			}
			err = cl.DeleteApprover(ctx, name)
			a = ack{what: "approver_deleted", subject: name}
		case n < 99:
			var res api.CARotateResponse
			res, err = cl.RotateCA(ctx, "campaign")
			a = ack{what: "rotate", subject: res.Serial}
		case n < 104:
			// Short TTLs: the server's expiry of switches runs during the campaign too.
			id := agentID(fmt.Sprintf("a-%d", 1+rng.Int64N(max(c.seq.Load(), 1))))
			var res api.LiveChangeResponse
			res, err = cl.EngageKillSwitch(ctx, api.KillSwitchRequest{Scope: "agent", Value: id, Reason: "campaign", TTLSec: rng.Int64N(3)})
			a = ack{what: "live", kind: audit.KindKillSwitch, op: "engaged", subject: "agent:" + id, version: res.Version}
			if err == nil {
				c.mu.Lock()
				c.switches = append(c.switches, res.ID)
				c.mu.Unlock()
			}
		case n < 107:
			id := c.pick(rng, &c.switches)
			if id == "" {
				continue
			}
			var res api.LiveChangeResponse
			res, err = cl.ReleaseKillSwitch(ctx, api.KillSwitchRelease{ID: id, Reason: "campaign"})
			a = ack{what: "live", kind: audit.KindKillSwitch, op: "released", version: res.Version}
			c.mu.Lock()
			c.switches = remove(c.switches, id)
			c.mu.Unlock()
		case n < 109:
			op := []string{"start", "end"}[rng.IntN(2)]
			var res api.LiveChangeResponse
			res, err = cl.Incident(ctx, op, api.IncidentRequest{Reason: "campaign"})
			a = ack{what: "live", kind: audit.KindIncidentMode, op: op + "ed", subject: "trust-domain", version: res.Version}
		default:
			zone := fmt.Sprintf("z%d", rng.IntN(3))
			state := []string{"normal", "degraded", "quarantined", "offline"}[rng.IntN(4)]
			var res api.LiveChangeResponse
			res, err = cl.SetZone(ctx, zone, api.ZoneRequest{State: state, Reason: "campaign"})
			a = ack{what: "live", kind: audit.KindZone, op: state, subject: "zone:" + zone, version: res.Version}
		}
		if err == nil {
			c.record(a)
		} else if r := reason(err); r == api.ReasonNotFound || r == api.ReasonConflict {
			continue // deleted meanwhile by another worker; no incident to end, one in force
		} else {
			time.Sleep(10 * time.Millisecond) // the server is down or restarting
		}
	}
}

// shipLoad ships batches of decision events from the gate identity until ctx ends.
func (c *campaign) shipLoad(ctx context.Context) {
	gate := "spiffe://" + trustDomain + "/gate/shipper"
	for n := 0; ctx.Err() == nil; n++ {
		var batch [][]byte
		var ids []string
		for i := range 5 {
			ev := audit.Event{V: audit.SchemaVersion, ID: fmt.Sprintf("dec-%d-%d", n, i), Kind: audit.KindDecision, Time: time.Now(),
				Caller: agentID("caller"), Callee: gate, Action: "purchase_order.create", Decision: audit.DecisionAllow, GateID: gate}
			b, err := ev.Canonical()
			if err != nil {
				c.t.Error(err)
				return
			}
			batch, ids = append(batch, b), append(ids, ev.ID)
		}
		if err := c.cur.Load().sink.Ship(ctx, batch); err == nil {
			c.record(ack{what: "ship", ids: ids})
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func reason(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}
