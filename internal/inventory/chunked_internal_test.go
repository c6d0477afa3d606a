package inventory

import (
	"bytes"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var catalogCmp = []cmp.Option{
	cmpopts.EquateEmpty(),
	cmp.AllowUnexported(Interaction{}),
	cmpopts.IgnoreUnexported(Catalog{}),
}

func TestChunkedParseEqualsSequential(t *testing.T) {
	var gen bytes.Buffer
	generate(&gen, 300, 3000, 5)
	shippedData, err := os.ReadFile("../../examples/supplychain/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"generated":          gen.Bytes(),
		"shipped":            shippedData,
		"comments-and-crlf":  []byte("# head\r\nversion: 1\r\ntrust_domain: t.test # td\r\nagents: # list\r\n  # first\r\n  - name: a\r\n    zone: z\r\n\r\n# between\r\n  - name: b\r\ninteractions:\r\n  - {from: a, to: b, action: x.y}\r\n"),
		"items-not-indented": []byte("agents:\n- name: a\n- name: b\n"),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := parseSequential("c.yaml", data)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := parseChunked("c.yaml", data)
			if name == "items-not-indented" {
				if ok {
					t.Fatal("chunked parser took a shape it should leave to the sequential one")
				}
				return
			}
			if !ok {
				t.Fatal("chunked parser gave up")
			}
			if diff := cmp.Diff(want, got, catalogCmp...); diff != "" {
				t.Fatalf("chunked != sequential (-seq +chunked):\n%s", diff)
			}
		})
	}
}

// FuzzChunkedMatchesSequential: whenever both decoders accept a document, they must
// produce the same catalog, line numbers included.
func FuzzChunkedMatchesSequential(f *testing.F) {
	var gen bytes.Buffer
	generate(&gen, 20, 60, 2)
	f.Add(gen.Bytes())
	if b, err := os.ReadFile("../../examples/supplychain/catalog.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("agents:\n  - name: a\n  - name: \"b\n  - c\"\n"))
	f.Add([]byte("interactions:\n  - {from: a,\n  - to: b}\n"))
	f.Add([]byte("agents:\n  - name: a\n    responsibilities:\n  - x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := parseChunked("f.yaml", data)
		if !ok {
			return
		}
		want, err := parseSequential("f.yaml", data)
		if err != nil {
			t.Fatalf("chunked accepted what sequential refuses: %v", err)
		}
		if diff := cmp.Diff(want, got, catalogCmp...); diff != "" {
			t.Fatalf("chunked != sequential (-seq +chunked):\n%s", diff)
		}
	})
}
