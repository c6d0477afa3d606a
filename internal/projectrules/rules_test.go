// Package projectrules holds the project's rules as tests: what the warden binary may link,
// and that every package says what it is.
package projectrules

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// forbidden are modules that belong to tests or to the benchmark module under bench/,
// never to the product binary (tailscale's TestDeps).
var forbidden = []string{
	"github.com/open-policy-agent/opa",
	"github.com/chromedp/",
	"go.uber.org/goleak",
	"github.com/google/go-cmp",
	"testing",
}

type pkg struct {
	ImportPath string
	Dir        string
	Name       string
	GoFiles    []string
	Standard   bool
}

func goList(t *testing.T, args ...string) []pkg {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestBinaryDeps(t *testing.T) {
	for _, p := range goList(t, "-deps", "github.com/warden-a2a/warden/cmd/warden") {
		for _, f := range forbidden {
			if p.ImportPath == f || strings.HasPrefix(p.ImportPath, f) && strings.HasSuffix(f, "/") || strings.HasPrefix(p.ImportPath, f+"/") {
				t.Errorf("the warden binary links %s (test or benchmark only)", p.ImportPath)
			}
		}
	}
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range goList(t, "github.com/warden-a2a/warden/...") {
		if len(p.GoFiles) == 0 {
			continue
		}
		documented := false
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if file.Doc != nil && strings.HasPrefix(strings.TrimSpace(file.Doc.Text()), "Package "+p.Name) || p.Name == "main" && file.Doc != nil {
				documented = true
				break
			}
		}
		if !documented {
			t.Errorf("%s has no package doc comment (\"// Package %s ...\")", p.ImportPath, p.Name)
		}
	}
}
