package crashtest_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/approval"
	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/store"
	"github.com/warden-a2a/warden/internal/store/postgres"
	"github.com/warden-a2a/warden/internal/store/sqlite"
	"github.com/warden-a2a/warden/internal/store/storeopen"
	"github.com/warden-a2a/warden/internal/truststate"
)

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// intermediateSerial is the serial of the intermediate CA installed in DATA_DIR/ca.
func intermediateSerial(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "ca", "intermediate.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("intermediate.pem: no PEM block")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(cert.SerialNumber.Bytes())
}

// logged is the audit log, indexed.
type logged struct {
	byID map[string]audit.Event
	all  []audit.Event
}

// find returns the events matching f.
func (l *logged) find(f func(audit.Event) bool) []audit.Event {
	var out []audit.Event
	for _, e := range l.all {
		if f(e) {
			out = append(out, e)
		}
	}
	return out
}

// check opens the stopped server's database and compares it with the audit log and
// with what the server acknowledged.
func (c *campaign) check(ctx context.Context, initialIntermediate string) {
	t := c.t
	spec := c.dsn
	if spec == "" {
		spec = filepath.Join(c.dir, "warden.db")
	}
	st, err := storeopen.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var db *sql.DB
	var storage audit.Storage
	var approvals approval.Store
	switch b := st.(type) {
	case *sqlite.Store:
		db = b.DB()
		if storage, err = audit.NewSQLite(ctx, db); err == nil {
			approvals, err = approval.NewSQLite(ctx, db)
		}
	case *postgres.Store:
		db = b.DB()
		if storage, err = audit.NewPostgres(ctx, db); err == nil {
			approvals, err = approval.NewPostgres(ctx, db)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	size, err := storage.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := storage.Records(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	log := &logged{byID: map[string]audit.Event{}}
	for _, r := range recs {
		ev, err := audit.ParseEvent(r.Data)
		if err != nil {
			t.Fatalf("record %d: %v", r.Index, err)
		}
		log.byID[ev.ID] = ev
		log.all = append(log.all, ev)
	}
	if left, err := st.PendingEvents(ctx, 10); err != nil || len(left) != 0 {
		t.Errorf("outbox after the campaign: %d events (%v), want none", len(left), err)
	}
	c.checkAcknowledged(log)
	c.checkEntries(ctx, st, db, log)
	checkTrustStates(ctx, t, db, log)
	c.checkApprovers(ctx, approvals, log)
	if cur := intermediateSerial(t, c.dir); cur != initialIntermediate && len(log.find(func(e audit.Event) bool {
		return e.Kind == audit.KindCARotation && e.Serial == cur
	})) == 0 {
		t.Errorf("intermediate CA %s is installed without a ca_rotation event", cur)
	}
	t.Logf("%d events in the log", len(log.all))
}

func (l *logged) has(kind audit.Kind, outcome, subject string, also func(audit.Event) bool) bool {
	return len(l.find(func(e audit.Event) bool {
		return e.Kind == kind && e.Outcome == outcome && e.Subject == subject && (also == nil || also(e))
	})) > 0
}

// checkAcknowledged: every change the server answered success for has its event.
func (c *campaign) checkAcknowledged(log *logged) {
	t := c.t
	c.mu.Lock()
	defer c.mu.Unlock()
	tokens := map[string]int{}
	missing := 0
	miss := func(format string, a ...any) {
		missing++
		if missing <= 20 {
			t.Errorf("acknowledged without its event: "+format, a...)
		}
	}
	for _, a := range c.acks {
		switch a.what {
		case "entry_created":
			if !log.has(audit.KindEntry, "created", a.subject, nil) {
				miss("entry %s created", a.subject)
			}
		case "entry_deleted":
			if !log.has(audit.KindEntry, "deleted", a.subject, nil) {
				miss("entry %s deleted", a.subject)
			}
		case "entry_updated":
			if !log.has(audit.KindEntry, "updated", a.subject, func(e audit.Event) bool { return e.Detail["attrs_sha256"] == a.sha }) {
				miss("entry %s updated to attrs %s", a.subject, a.sha)
			}
		case "token":
			tokens[a.subject]++
		case "trust":
			kind, outcome := map[string]audit.Kind{"revoke": audit.KindRevocation, "quarantine": audit.KindQuarantine,
				"suspend": audit.KindSuspension, "restore": audit.KindQuarantine, "challenge": audit.KindAttestation}[a.op],
				map[string]string{"revoke": "revoked", "quarantine": "engaged", "suspend": "engaged", "restore": "released", "challenge": "challenged"}[a.op]
			v := strconv.FormatInt(a.version, 10)
			if !log.has(kind, outcome, a.subject, func(e audit.Event) bool { return e.Detail["trust_state_version"] == v }) {
				miss("%s of %s (trust-state version %s)", a.op, a.subject, v)
			}
		case "live":
			v := strconv.FormatInt(a.version, 10)
			if len(log.find(func(e audit.Event) bool {
				return e.Kind == a.kind && e.Outcome == a.op && (a.subject == "" || e.Subject == a.subject) && e.Detail["trust_state_version"] == v
			})) == 0 {
				miss("%s %s %s (trust-state version %s)", a.kind, a.op, a.subject, v)
			}
		case "approver_added", "approver_deleted":
			if !log.has(audit.KindApprover, strings.TrimPrefix(a.what, "approver_"), a.subject, nil) {
				miss("%s %s", a.what, a.subject)
			}
		case "rotate":
			if _, ok := log.byID["ca_rotation-"+a.subject]; !ok {
				miss("CA rotation to %s", a.subject)
			}
		case "ship":
			for _, id := range a.ids {
				if _, ok := log.byID[id]; !ok {
					miss("shipped decision %s", id)
				}
			}
		}
	}
	for subject, n := range tokens {
		if got := len(log.find(func(e audit.Event) bool { return e.Kind == audit.KindJoinToken && e.Subject == subject })); got < n {
			miss("%d tokens for %s, %d join_token events", n, subject, got)
		}
	}
	if missing > 0 {
		t.Errorf("%d acknowledged changes without their event", missing)
	}
}

// checkEntries: every entry and token in the database has its event; every entry whose
// creation is logged and that is gone has its deletion logged.
func (c *campaign) checkEntries(ctx context.Context, st store.Store, db *sql.DB, log *logged) {
	t := c.t
	entries, err := st.ListEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	for _, e := range entries {
		present[e.SPIFFEID] = true
		if !log.has(audit.KindEntry, "created", e.SPIFFEID, nil) {
			t.Errorf("entry %s exists without its created event", e.Name)
		}
		if len(e.Attrs) > 0 && !log.has(audit.KindEntry, "updated", e.SPIFFEID, func(ev audit.Event) bool { return ev.Detail["attrs_sha256"] == sha256Hex(e.Attrs) }) {
			t.Errorf("entry %s has attrs %s without the event that set them", e.Name, e.Attrs)
		}
	}
	c.mu.Lock()
	attempted := maps.Clone(c.attempted)
	c.mu.Unlock()
	for name := range attempted {
		id := agentID(name)
		if strings.HasPrefix(name, "a-") && !present[id] && log.has(audit.KindEntry, "created", id, nil) && !log.has(audit.KindEntry, "deleted", id, nil) {
			t.Errorf("entry %s was created and is gone without a deleted event", name)
		}
	}
	rows, err := db.QueryContext(ctx, "SELECT e.spiffe_id, COUNT(*) FROM join_tokens t JOIN entries e ON e.name = t.entry_name GROUP BY e.spiffe_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		if got := len(log.find(func(e audit.Event) bool { return e.Kind == audit.KindJoinToken && e.Subject == id })); got != n {
			t.Errorf("%s has %d join tokens and %d join_token events", id, n, got)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// checkTrustStates: every trust-state version that revokes, restores, quarantines,
// suspends, challenges, records an attestation result, engages or releases a kill
// switch, starts or ends an incident, sets a zone, changes a federation relationship or
// the policy revision has an event naming that version.
// (Directory updates follow the entries, whose events are checked above; a challenge
// dropped because its entry is gone is a clean-up.)
func checkTrustStates(ctx context.Context, t *testing.T, db *sql.DB, log *logged) {
	rows, err := db.QueryContext(ctx, "SELECT version, signed FROM trust_states ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var prev *truststate.Document
	versions := 0
	for rows.Next() {
		var v int64
		var signed []byte
		if err := rows.Scan(&v, &signed); err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(string(signed), ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var doc truststate.Document
		if err := json.Unmarshal(payload, &doc); err != nil {
			t.Fatalf("trust state %d: %v", v, err)
		}
		if prev != nil && actionChange(prev, &doc) {
			ver := strconv.FormatInt(v, 10)
			if len(log.find(func(e audit.Event) bool { return e.Detail["trust_state_version"] == ver })) == 0 {
				t.Errorf("trust-state version %d changed what operators act on without an event", v)
			}
		}
		prev = &doc
		versions++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d trust-state versions", versions)
}

func actionChange(a, b *truststate.Document) bool {
	if !reflect.DeepEqual(a.RevokedIDs, b.RevokedIDs) || !reflect.DeepEqual(a.RevokedSerials, b.RevokedSerials) ||
		!reflect.DeepEqual(a.Agents, b.Agents) || !reflect.DeepEqual(a.Attestations, b.Attestations) ||
		!reflect.DeepEqual(a.KillSwitches, b.KillSwitches) || a.IncidentMode != b.IncidentMode ||
		!reflect.DeepEqual(a.Incident, b.Incident) || !reflect.DeepEqual(a.Responders, b.Responders) ||
		!reflect.DeepEqual(a.Zones, b.Zones) || a.PolicyRevision != b.PolicyRevision ||
		!reflect.DeepEqual(a.Federation, b.Federation) {
		return true
	}
	for id, ch := range b.Challenges {
		if old, ok := a.Challenges[id]; !ok || !reflect.DeepEqual(old, ch) {
			return true
		}
	}
	return false
}

// checkApprovers: every approver in the database was added with an event and not deleted
// since; every approver whose addition is logged and that is gone has its deletion logged.
func (c *campaign) checkApprovers(ctx context.Context, approvals approval.Store, log *logged) {
	t := c.t
	as, err := approvals.ListApprovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	for _, a := range as {
		present[a.Name] = true
		evs := log.find(func(e audit.Event) bool { return e.Kind == audit.KindApprover && e.Subject == a.Name })
		if len(evs) == 0 || evs[len(evs)-1].Outcome != "added" {
			t.Errorf("approver %s exists; its events: %d, the last not added", a.Name, len(evs))
		}
	}
	c.mu.Lock()
	attempted := maps.Clone(c.attempted)
	c.mu.Unlock()
	for name := range attempted {
		if strings.HasPrefix(name, "p-") && !present[name] && log.has(audit.KindApprover, "added", name, nil) && !log.has(audit.KindApprover, "deleted", name, nil) {
			t.Errorf("approver %s was added and is gone without a deleted event", name)
		}
	}
}
