package inventory

import (
	"bytes"
	"runtime"
	"sync"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// chunkedMin is the size from which Parse splits a catalog and parses the pieces in
// parallel: YAML decoding is most of the cost of a large report.
const chunkedMin = 1 << 20

// parseChunked parses large catalogs of the usual shape in parallel. It splits the
// document at its top-level keys and each list at its items (a line that starts, at the
// list's item indentation, with "- "), prefixes each piece with as many newlines as
// lines precede it so that yaml.v3 reports the original line numbers, and decodes the
// pieces concurrently with the same decoders as Parse.
//
// It gives up (ok false) on anything unusual — document markers, directives, anchors
// at the top, a repeated or unknown top-level key, an inline list, a piece that fails —
// and Parse then runs the sequential decoder, whose answer (and error message) is
// authoritative. FuzzParse checks that both paths agree whenever both succeed.
func parseChunked(file string, data []byte) (c *Catalog, ok bool) {
	if len(data) < 3 || bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) || !utf8.Valid(data) {
		return nil, false
	}
	// yaml.v3 also breaks lines at a lone CR, NEL, LS and PS; pieces are cut at "\n"
	// only, so leave such documents to the sequential decoder.
	for _, brk := range []string{"\u0085", "\u2028", "\u2029"} {
		if bytes.Contains(data, []byte(brk)) {
			return nil, false
		}
	}
	for i := bytes.IndexByte(data, '\r'); i >= 0; {
		if i+1 >= len(data) || data[i+1] != '\n' {
			return nil, false
		}
		j := bytes.IndexByte(data[i+1:], '\r')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	type section struct {
		key       string
		line      int // 1-based line of the key
		start     int // byte offset of the key line
		end       int // byte offset after the section
		itemLines []int
		itemOffs  []int
		indent    int // item indentation, -1 until known
	}
	var secs []*section
	seen := map[string]bool{}
	line := 0
	for off := 0; off < len(data); {
		line++
		nl := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if nl >= 0 {
			next = off + nl + 1
		}
		l := bytes.TrimRight(data[off:next], "\r\n")
		switch {
		case len(l) == 0 || l[0] == '#':
			// blank or comment: belongs to the current section
		case l[0] != ' ':
			colon := bytes.IndexByte(l, ':')
			if colon <= 0 {
				return nil, false
			}
			key := string(l[:colon])
			switch key {
			case "version", "trust_domain", "agents", "interactions", "dependencies", "workflows": // workflows: one piece
			default:
				return nil, false
			}
			if seen[key] {
				return nil, false
			}
			seen[key] = true
			rest := bytes.TrimSpace(l[colon+1:])
			isList := key == "agents" || key == "interactions" || key == "dependencies"
			if isList && len(rest) > 0 && rest[0] != '#' {
				return nil, false // an inline list or value: not the usual shape
			}
			if len(secs) > 0 {
				secs[len(secs)-1].end = off
			}
			secs = append(secs, &section{key: key, line: line, start: off, indent: -1})
		default:
			if len(secs) == 0 {
				return nil, false
			}
			s := secs[len(secs)-1]
			if s.key != "agents" && s.key != "interactions" && s.key != "dependencies" {
				break
			}
			ind := 0
			for ind < len(l) && l[ind] == ' ' {
				ind++
			}
			if ind == len(l) || l[ind] == '#' {
				break
			}
			if s.indent < 0 {
				if l[ind] != '-' {
					return nil, false
				}
				s.indent = ind
			}
			if ind == s.indent && l[ind] == '-' && (ind+1 == len(l) || l[ind+1] == ' ') {
				s.itemLines = append(s.itemLines, line)
				s.itemOffs = append(s.itemOffs, off)
			}
		}
		off = next
	}
	if len(secs) == 0 {
		return nil, false
	}
	secs[len(secs)-1].end = len(data)
	// The comments before the first key go with the first piece: yaml.v3 checks every
	// byte (encoding, control characters), and so must the pieces together.
	secs[0].start, secs[0].line = 0, 1

	// Pieces: scalars whole; lists in up to 4*GOMAXPROCS runs of items.
	type piece struct {
		key  string
		text []byte
		out  any // *[]Agent, *[]Interaction, *[]Dependency, *[]Workflow, *int or *string
		err  error
	}
	var pieces []*piece
	workers := runtime.GOMAXPROCS(0)
	prefix := func(n int) []byte { return bytes.Repeat([]byte("\n"), n) }
	for _, s := range secs {
		if len(s.itemLines) == 0 {
			text := append(prefix(s.line-1), data[s.start:s.end]...)
			pieces = append(pieces, &piece{key: s.key, text: text})
			continue
		}
		n := min(4*workers, len(s.itemLines))
		per := (len(s.itemLines) + n - 1) / n
		for i := 0; i < len(s.itemLines); i += per {
			j := min(i+per, len(s.itemLines))
			from, to := s.itemOffs[i], s.end
			if j < len(s.itemLines) {
				to = s.itemOffs[j]
			}
			if i == 0 {
				from = s.start // the key line and any comments before the first item
				text := append(prefix(s.line-1), data[from:to]...)
				pieces = append(pieces, &piece{key: s.key, text: text})
				continue
			}
			// "key:" on the line before the first item of this piece.
			text := append(prefix(s.itemLines[i]-2), s.key+":\n"...)
			text = append(text, data[from:to]...)
			pieces = append(pieces, &piece{key: s.key, text: text})
		}
	}

	c = &Catalog{File: file}
	results := make([]any, len(pieces))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p := pieces[i]
				results[i], p.err = decodePiece(file, p.key, p.text)
			}
		}()
	}
	for i := range pieces {
		next <- i
	}
	close(next)
	wg.Wait()
	var nA, nI, nD int
	for i, p := range pieces {
		if p.err != nil {
			return nil, false
		}
		switch v := results[i].(type) {
		case []Agent:
			nA += len(v)
		case []Interaction:
			nI += len(v)
		case []Dependency:
			nD += len(v)
		}
	}
	c.Agents = make([]Agent, 0, nA)
	c.Interactions = make([]Interaction, 0, nI)
	c.Dependencies = make([]Dependency, 0, nD)
	for i := range pieces {
		switch v := results[i].(type) {
		case int:
			c.Version = v
		case string:
			c.TrustDomain = v
		case []Agent:
			c.Agents = append(c.Agents, v...)
		case []Interaction:
			c.Interactions = append(c.Interactions, v...)
		case []Dependency:
			c.Dependencies = append(c.Dependencies, v...)
		case []Workflow:
			c.Workflows = append(c.Workflows, v...)
		case nil:
		default:
			return nil, false
		}
	}
	c.index()
	return c, true
}

// decodePiece decodes one piece: a mapping with the single key key.
func decodePiece(file, key string, text []byte) (any, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(text, &root); err != nil {
		return nil, err
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		return nil, errPiece
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode || len(m.Content) != 2 || m.Content[0].Value != key {
		return nil, errPiece
	}
	v := m.Content[1]
	switch key {
	case "version":
		var n int
		err := v.Decode(&n)
		return n, err
	case "trust_domain":
		var s string
		err := decodeString(file, v, &s)
		return s, err
	case "agents":
		var out []Agent
		err := decodeList(file, v, "agents", &out, decodeAgent)
		return out, err
	case "interactions":
		var out []Interaction
		err := decodeList(file, v, "interactions", &out, decodeInteraction)
		return out, err
	case "dependencies":
		var out []Dependency
		err := decodeList(file, v, "dependencies", &out, decodeDependency)
		return out, err
	case "workflows":
		var out []Workflow
		err := decodeList(file, v, "workflows", &out, decodeWorkflow)
		return out, err
	}
	return nil, errPiece
}

var errPiece = &ParseError{Msg: "piece"}
