package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"
)

// MaxRequestBytes bounds an add-checkpoint body: 63 proof lines and a checkpoint with a
// few signatures fit in far less.
const MaxRequestBytes = 16 << 10

// maxProofLines is the spec's bound on consistency proof lines.
const maxProofLines = 63

// request is a parsed add-checkpoint body (C2SP tlog-witness): "old <size>\n", zero or
// more base64 proof hashes one per line, an empty line, then the checkpoint note.
type request struct {
	old        int64
	proof      tlog.TreeProof
	checkpoint []byte
}

var errMalformed = errors.New("malformed add-checkpoint body")

// parseRequest parses an add-checkpoint body strictly: the old size in canonical decimal
// (no sign, no leading zeros), each proof line one standard-base64 SHA-256 hash, every
// line newline-terminated.
func parseRequest(b []byte) (request, error) {
	var r request
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	num, found := bytes.CutPrefix(line, []byte("old "))
	if !ok || !found {
		return r, errMalformed
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != string(num) {
		return r, errMalformed
	}
	r.old = n
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return r, errMalformed
		}
		if len(line) == 0 {
			break
		}
		if len(r.proof) == maxProofLines {
			return r, errMalformed
		}
		h, err := base64.StdEncoding.Strict().DecodeString(string(line))
		if err != nil || len(h) != tlog.HashSize {
			return r, errMalformed
		}
		r.proof = append(r.proof, tlog.Hash(h))
	}
	if len(rest) == 0 {
		return r, errMalformed
	}
	r.checkpoint = rest
	return r, nil
}

// encodeRequest is parseRequest's inverse (the client's side).
func encodeRequest(old int64, proof tlog.TreeProof, checkpoint []byte) []byte {
	var b bytes.Buffer
	b.WriteString("old " + strconv.FormatInt(old, 10) + "\n")
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(checkpoint)
	return b.Bytes()
}
