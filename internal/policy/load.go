package policy

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"
)

// File names inside a policy bundle directory.
const (
	SchemaFile     = "schema.cedarschema"
	RateLimitsFile = "ratelimits.yaml"
	ExceptionsDir  = "exceptions"
	TestsDir       = "tests"
)

// Options configures Load. The zero value is valid.
type Options struct {
	// Logger receives one line per load (revision, counts); nil discards.
	Logger *slog.Logger
}

// Problem is one defect found while checking a bundle: a parse error, a type
// error against the schema, a missing annotation, a bad exception or limit.
type Problem struct {
	File string
	Line int // 1-based; 0 when unknown
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// InvalidBundleError is returned by Load and LoadFS when the bundle has problems;
// such a bundle is never loaded.
type InvalidBundleError struct {
	Problems []Problem
}

func (e *InvalidBundleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy: bundle refused, %d problem(s)", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Load reads, checks and compiles the bundle in dir. It returns *InvalidBundleError
// if any policy fails to parse or type-check, or any exception or limit is invalid.
func Load(dir string, opts Options) (*Engine, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("policy: %s is not a directory", dir)
	}
	return LoadFS(os.DirFS(dir), opts)
}

// LoadFS is Load over any file system (a directory, or the files of a verified bundle).
func LoadFS(fsys fs.FS, opts Options) (*Engine, error) {
	src, err := readSource(fsys)
	if err != nil {
		return nil, err
	}
	e, probs := compile(src)
	if len(probs) > 0 {
		return nil, &InvalidBundleError{Problems: probs}
	}
	if opts.Logger != nil {
		opts.Logger.Info("policy bundle loaded", "revision", e.revision,
			"policies", len(e.meta), "exceptions", len(e.exceptions), "rate_limits", len(e.limits.limits))
	}
	return e, nil
}

// Check parses and validates the bundle in dir against its schema and returns every
// problem found, each with file and line. An empty result means Load will accept it.
func Check(dir string) ([]Problem, error) {
	src, err := readSource(os.DirFS(dir))
	if err != nil {
		return nil, err
	}
	_, probs := compile(src)
	return probs, nil
}

// source is the raw content of a bundle: file name (slash path) → bytes.
type source map[string][]byte

// readSource collects the bundle files that affect decisions (schema, *.cedar at the
// top level, ratelimits.yaml, exceptions/*.yaml). Test cases are not part of it.
func readSource(fsys fs.FS) (source, error) {
	src := source{}
	top, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	add := func(name string) error {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		src[name] = b
		return nil
	}
	for _, de := range top {
		n := de.Name()
		switch {
		case de.IsDir() && n == ExceptionsDir:
			ex, err := fs.ReadDir(fsys, ExceptionsDir)
			if err != nil {
				return nil, fmt.Errorf("policy: %w", err)
			}
			for _, x := range ex {
				if !x.IsDir() && (strings.HasSuffix(x.Name(), ".yaml") || strings.HasSuffix(x.Name(), ".yml")) {
					if err := add(path.Join(ExceptionsDir, x.Name())); err != nil {
						return nil, err
					}
				}
			}
		case de.IsDir():
		case n == SchemaFile, n == RateLimitsFile, strings.HasSuffix(n, ".cedar"):
			if err := add(n); err != nil {
				return nil, err
			}
		}
	}
	if _, ok := src[SchemaFile]; !ok {
		return nil, fmt.Errorf("policy: bundle has no %s", SchemaFile)
	}
	return src, nil
}

// policyMeta is what the engine needs about one policy at decision time.
type policyMeta struct {
	ID          string
	File        string
	Line        int
	Forbid      bool
	Reason      string
	Remedy      string
	Code        string
	Annotations map[string]string
	Text        string // canonical Cedar text
	Exception   *Exception

	// Precomputed for decisions with this policy as the only determining one.
	ids                         []string
	annMap                      map[string]map[string]string
	obligations                 []string
	allowSentence, denySentence string
}

// compile turns a source into an Engine, or lists why it cannot.
func compile(src source) (*Engine, []Problem) {
	var probs []Problem
	var sch schema.Schema
	sch.SetFilename(SchemaFile)
	if err := sch.UnmarshalCedar(src[SchemaFile]); err != nil {
		return nil, []Problem{{File: SchemaFile, Line: errLine(err), Msg: err.Error()}}
	}
	rs, err := sch.Resolve()
	if err != nil {
		return nil, []Problem{{File: SchemaFile, Msg: err.Error()}}
	}
	v := validate.New(rs)
	e := &Engine{
		ps:      cedar.NewPolicySet(),
		meta:    map[cedar.PolicyID]*policyMeta{},
		actions: actionEntities(rs),
		schema:  rs,
		src:     src,
	}
	e.actionInfo, e.resourceTypes = catalog(rs)
	for uid, a := range rs.Actions {
		if a.AppliesTo == nil {
			continue
		}
		ps, pp := declaredParams(string(uid.ID), a.AppliesTo.Context)
		for _, m := range pp {
			probs = append(probs, Problem{File: SchemaFile, Msg: m})
		}
		ai := e.actionInfo[string(uid.ID)]
		ai.Params = ps
		e.actionInfo[string(uid.ID)] = ai
	}

	add := func(file string, p *cedar.Policy, exc *Exception) {
		pos := p.Position()
		ann := map[string]string{}
		for k, val := range p.Annotations() {
			ann[string(k)] = string(val)
		}
		id := ann["id"]
		switch {
		case id == "":
			probs = append(probs, Problem{File: file, Line: pos.Line, Msg: `policy has no @id("...") annotation`})
			return
		case ann["reason"] == "":
			probs = append(probs, Problem{File: file, Line: pos.Line, Msg: fmt.Sprintf(`policy %q has no @reason("...") annotation`, id)})
		}
		if prev, dup := e.meta[cedar.PolicyID(id)]; dup {
			probs = append(probs, Problem{File: file, Line: pos.Line, Msg: fmt.Sprintf("duplicate policy id %q (first at %s:%d)", id, prev.File, prev.Line)})
			return
		}
		if err := v.Policy(id, (*xast.Policy)(p.AST())); err != nil {
			for _, m := range splitErrors(err) {
				probs = append(probs, Problem{File: file, Line: pos.Line, Msg: fmt.Sprintf("policy %q: %s", id, m)})
			}
		}
		e.ps.Add(cedar.PolicyID(id), p)
		e.meta[cedar.PolicyID(id)] = &policyMeta{
			ID: id, File: file, Line: pos.Line, Forbid: p.Effect() == cedar.Forbid,
			Reason: ann["reason"], Remedy: ann["remedy"], Code: ann["code"],
			Annotations: ann, Text: string(p.MarshalCedar()), Exception: exc,
		}
	}

	names := slices.Sorted(func(yield func(string) bool) {
		for n := range src {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		if !strings.HasSuffix(name, ".cedar") {
			continue
		}
		list, err := cedar.NewPolicyListFromBytes(name, src[name])
		if err != nil {
			probs = append(probs, Problem{File: name, Line: errLine(err), Msg: err.Error()})
			continue
		}
		for _, p := range list {
			add(name, p, nil)
		}
	}

	for _, name := range names {
		if !strings.HasPrefix(name, ExceptionsDir+"/") {
			continue
		}
		x, err := ParseException(src[name])
		if err != nil {
			probs = append(probs, Problem{File: name, Line: errLine(err), Msg: err.Error()})
			continue
		}
		x.File = name
		p, err := x.compile()
		if err != nil {
			probs = append(probs, Problem{File: name, Line: lineOf(src[name], "scope:"), Msg: err.Error()})
			continue
		}
		n := len(probs)
		add(name, p, &x)
		for i := n; i < len(probs); i++ {
			probs[i].Line = lineOf(src[name], "scope:")
		}
		for _, w := range x.Waives {
			m, ok := e.meta[cedar.PolicyID(w)]
			if !ok || !m.Forbid || m.Exception != nil {
				probs = append(probs, Problem{File: name, Line: lineOf(src[name], "waives:"),
					Msg: fmt.Sprintf("exception %s waives %q, which is not a forbid policy of this bundle", x.ID, w)})
			}
		}
		e.exceptions = append(e.exceptions, x)
	}
	slices.SortFunc(e.exceptions, func(a, b Exception) int { return cmp.Compare(a.ID, b.ID) })
	seen := map[string]string{}
	for _, x := range e.exceptions {
		if f, dup := seen[x.ID]; dup {
			probs = append(probs, Problem{File: x.File, Line: lineOf(src[x.File], "id:"), Msg: fmt.Sprintf("duplicate exception id %q (also in %s)", x.ID, f)})
		}
		seen[x.ID] = x.File
	}

	limits := []RateLimit{}
	if b, ok := src[RateLimitsFile]; ok {
		ls, err := ParseRateLimits(b)
		if err != nil {
			probs = append(probs, Problem{File: RateLimitsFile, Line: errLine(err), Msg: err.Error()})
		}
		for _, l := range ls {
			if l.Action != "*" {
				if _, ok := e.actionInfo[l.Action]; !ok {
					probs = append(probs, Problem{File: RateLimitsFile, Line: lineOf(b, "id: "+l.ID), Msg: fmt.Sprintf("rate limit %s: unknown action %q", l.ID, l.Action)})
				}
			}
		}
		limits = ls
	}
	e.limits = newLimiter(limits)
	if len(probs) > 0 {
		return nil, probs
	}
	e.index()
	e.revision = e.computeRevision(&sch)
	return e, nil
}

// computeRevision is SHA-256 over the canonical bundle:
//
//	"warden-policy-v1\n" || schema (Cedar form, as re-marshalled by cedar-go)
//	|| for each policy sorted by id: "policy " id "\n" canonical Cedar text "\n"
//	|| for each exception sorted by id: its canonical form
//	|| for each rate limit in order: its canonical form
//
// Comments, whitespace and file layout do not change the revision; any change to
// what a decision depends on does.
func (e *Engine) computeRevision(sch *schema.Schema) string {
	h := sha256.New()
	h.Write([]byte("warden-policy-v1\n"))
	sb, _ := sch.MarshalCedar()
	e.schemaCanon = string(sb)
	h.Write(sb)
	ids := slices.Sorted(func(yield func(string) bool) {
		for _, m := range e.meta {
			if !yield(m.ID) {
				return
			}
		}
	})
	for _, id := range ids {
		fmt.Fprintf(h, "policy %s\n%s\n", id, e.meta[cedar.PolicyID(id)].Text)
	}
	for _, x := range e.exceptions {
		fmt.Fprintf(h, "exception %s\n", x.canonical())
	}
	for _, l := range e.limits.limits {
		fmt.Fprintf(h, "ratelimit %s\n", l.canonical())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// actionEntities holds the action entities (with their group parents) for evaluation.
func actionEntities(rs *resolved.Schema) types.EntityMap {
	m := types.EntityMap{}
	for uid, a := range rs.Actions {
		m[uid] = a.Entity
	}
	return m
}

// ActionInfo describes one action of the schema.
type ActionInfo struct {
	Name          string   // "purchase_order.create"
	Groups        []string // action groups it belongs to, e.g. "read", "spend"
	ResourceTypes []string // resource entity types it applies to
	Params        []Param  // business parameters its context type declares, by name
}

func catalog(rs *resolved.Schema) (map[string]ActionInfo, []string) {
	acts := map[string]ActionInfo{}
	rtypes := map[string]bool{}
	for uid, a := range rs.Actions {
		if a.AppliesTo == nil {
			continue // a pure group such as "read"
		}
		ai := ActionInfo{Name: string(uid.ID)}
		for p := range a.Entity.Parents.All() {
			ai.Groups = append(ai.Groups, string(p.ID))
		}
		for _, r := range a.AppliesTo.Resources {
			ai.ResourceTypes = append(ai.ResourceTypes, string(r))
			rtypes[string(r)] = true
		}
		slices.Sort(ai.Groups)
		slices.Sort(ai.ResourceTypes)
		acts[ai.Name] = ai
	}
	for et := range rs.Entities {
		if et != "Agent" {
			rtypes[string(et)] = true
		}
	}
	return acts, slices.Sorted(func(yield func(string) bool) {
		for t := range rtypes {
			if !yield(t) {
				return
			}
		}
	})
}

func splitErrors(err error) []string {
	var out []string
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) {
		for _, e := range multi.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
