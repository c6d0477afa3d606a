// Package auditdoc reads the two tables of docs/audit-events.md — the event fields and
// the event kinds — so that tests can hold the code to what the document promises: every
// documented kind is written by some code path, every kind the code knows is documented,
// and every documented field is filled by some event. It is used by tests only.
package auditdoc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Row is one row of a table: its first cell (the name, without backticks) and the
// others as written.
type Row struct {
	Name  string
	Cells []string
}

// Doc is what docs/audit-events.md documents.
type Doc struct {
	Fields []Row // "## Fields": field | type | in | meaning
	Kinds  []Row // "## Kinds": kind | written by | when
}

// Load reads the document at path. A missing table, or one with fewer than 5 rows, is
// an error: a test reading nothing would pass for nothing.
func Load(path string) (Doc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Doc{}, err
	}
	var d Doc
	var cur *[]Row
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "## "):
			cur = map[string]*[]Row{"## Fields": &d.Fields, "## Kinds": &d.Kinds}[line]
		case cur != nil && strings.HasPrefix(line, "|"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			name := cells[0]
			if !strings.HasPrefix(name, "`") { // the header row and the --- row
				continue
			}
			*cur = append(*cur, Row{Name: strings.Trim(name, "`"), Cells: cells[1:]})
		}
	}
	if len(d.Fields) < 5 || len(d.Kinds) < 5 {
		return Doc{}, fmt.Errorf("auditdoc: %s: %d fields and %d kinds read; the tables moved?", path, len(d.Fields), len(d.Kinds))
	}
	return d, nil
}

// KindsWrittenBy returns the documented kinds whose "written by" cell is one of who.
func (d Doc) KindsWrittenBy(who ...string) []string {
	var out []string
	for _, r := range d.Kinds {
		for _, w := range who {
			if len(r.Cells) > 0 && r.Cells[0] == w {
				out = append(out, r.Name)
			}
		}
	}
	return out
}

// FieldsIn returns the documented fields whose "in" cell starts with one of in
// ("decision", "lifecycle", "all").
func (d Doc) FieldsIn(in ...string) []string {
	var out []string
	for _, r := range d.Fields {
		for _, p := range in {
			if len(r.Cells) > 1 && strings.HasPrefix(r.Cells[1], p) {
				out = append(out, r.Name)
				break
			}
		}
	}
	return out
}
