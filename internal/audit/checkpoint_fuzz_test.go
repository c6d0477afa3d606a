package audit

import (
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// FuzzParseCheckpointText: checkpoint notes are read back from the database and from
// auditors' copies. Whatever parses must format back to the same text.
func FuzzParseCheckpointText(f *testing.F) {
	f.Add(checkpointText("warden-audit/example.org", 1000, tlog.RecordHash([]byte("x"))))
	f.Add("warden-audit/example.org\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	f.Add("a\n-1\n\n")
	f.Add("a\n01\nAAAA\n")
	f.Fuzz(func(t *testing.T, text string) {
		origin, size, root, err := parseCheckpointText(text)
		if err != nil {
			return
		}
		if size < 0 {
			t.Fatalf("negative size %d", size)
		}
		if got := checkpointText(origin, size, root); got != text {
			t.Fatalf("round trip changed the text:\n%q\n%q", text, got)
		}
	})
}
