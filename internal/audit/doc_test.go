package audit_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-a2a/warden/internal/audit"
	"github.com/warden-a2a/warden/internal/audit/auditdoc"
)

// TestDocumentedKindsAreTheKnownKinds: docs/audit-events.md lists exactly the kinds
// ParseEvent accepts — no kind the code writes is undocumented, no documented kind is
// unknown to the code. (That every documented kind is also written by some code path is
// checked where the writers run: internal/server TestEveryDocumentedKindIsWritten and
// internal/gate TestDocumentedDecisionFieldsAreWritten.)
func TestDocumentedKindsAreTheKnownKinds(t *testing.T) {
	doc, err := auditdoc.Load("../../docs/audit-events.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, r := range doc.Kinds {
		documented = append(documented, r.Name)
	}
	slices.Sort(documented)
	var known []string
	for _, k := range audit.Kinds() {
		known = append(known, string(k))
	}
	if diff := cmp.Diff(known, documented); diff != "" {
		t.Errorf("kinds the code knows (-) vs kinds docs/audit-events.md documents (+):\n%s", diff)
	}
}

// TestDocumentedFieldsAreTheEventFields: the Fields table of docs/audit-events.md lists
// exactly the JSON fields of an event, in the canonical order.
func TestDocumentedFieldsAreTheEventFields(t *testing.T) {
	doc, err := auditdoc.Load("../../docs/audit-events.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, r := range doc.Fields {
		documented = append(documented, r.Name)
	}
	var fields []string
	rt := reflect.TypeOf(audit.Event{})
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	if diff := cmp.Diff(fields, documented); diff != "" {
		t.Errorf("event fields in canonical order (-) vs docs/audit-events.md's table (+):\n%s", diff)
	}
}
