package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Key files inside the key directory (DATA_DIR/audit).
const (
	SignerKeyFile   = "signer.key"   // note signer key, mode 0600, never logged
	VerifierKeyFile = "verifier.key" // note verifier key, public
)

// NoteName returns the checkpoint signer's note name for a trust domain,
// "warden-audit/<trust-domain>". It is also the checkpoint's origin line.
func NoteName(trustDomain string) string { return "warden-audit/" + trustDomain }

// LoadOrCreateKeys returns the checkpoint signer and verifier kept in dir, generating an
// Ed25519 note key pair named name on first use (dir is created 0700, signer.key is
// written 0600, verifier.key 0644). An existing key with another name is an error.
func LoadOrCreateKeys(dir, name string) (note.Signer, note.Verifier, error) {
	skPath := filepath.Join(dir, SignerKeyFile)
	vkPath := filepath.Join(dir, VerifierKeyFile)
	if _, err := os.Stat(skPath); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("audit: key dir: %w", err)
		}
		skey, _, err := note.GenerateKey(rand.Reader, name)
		if err != nil {
			return nil, nil, fmt.Errorf("audit: generate key: %w", err)
		}
		if err := writeNew(skPath, []byte(skey+"\n"), 0o600); err != nil {
			return nil, nil, err
		}
	}
	// The verifier key is derived from the signer key, so a crash between the two
	// writes leaves nothing to repair by hand.
	if _, err := os.Stat(vkPath); errors.Is(err, os.ErrNotExist) {
		b, err := os.ReadFile(skPath)
		if err != nil {
			return nil, nil, fmt.Errorf("audit: read signer key: %w", err)
		}
		vkey, err := verifierKeyOf(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, nil, fmt.Errorf("audit: signer key in %s is malformed", skPath)
		}
		tmp := vkPath + ".tmp"
		os.Remove(tmp)
		if err := writeNew(tmp, []byte(vkey+"\n"), 0o644); err != nil {
			return nil, nil, err
		}
		if err := os.Rename(tmp, vkPath); err != nil {
			return nil, nil, fmt.Errorf("audit: write verifier key: %w", err)
		}
	}
	signer, verifier, err := LoadKeys(dir)
	if err != nil {
		return nil, nil, err
	}
	if signer.Name() != name {
		return nil, nil, fmt.Errorf("audit: keys in %s are for %q, want %q", dir, signer.Name(), name)
	}
	return signer, verifier, nil
}

// verifierKeyOf derives the note verifier key from an Ed25519 note signer key
// "PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>".
func verifierKeyOf(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("malformed")
	}
	k, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(k) != 1+ed25519.SeedSize || k[0] != 1 {
		return "", errors.New("malformed")
	}
	pub := ed25519.NewKeyFromSeed(k[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// LoadKeys returns the existing checkpoint signer and verifier kept in dir, whatever
// their name. It refuses a signer key file readable by group or others.
func LoadKeys(dir string) (note.Signer, note.Verifier, error) {
	skPath := filepath.Join(dir, SignerKeyFile)
	b, err := os.ReadFile(skPath)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: read signer key: %w", err)
	}
	if fi, err := os.Stat(skPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, nil, fmt.Errorf("audit: %s is readable by others (mode %v); want 0600", skPath, fi.Mode().Perm())
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, nil, fmt.Errorf("audit: signer key in %s is malformed", skPath) // never echo the key
	}
	verifier, err := LoadVerifier(filepath.Join(dir, VerifierKeyFile))
	if err != nil {
		return nil, nil, err
	}
	if signer.Name() != verifier.Name() || signer.KeyHash() != verifier.KeyHash() {
		return nil, nil, fmt.Errorf("audit: %s and %s are not one key pair", SignerKeyFile, VerifierKeyFile)
	}
	return signer, verifier, nil
}

func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("audit: create key file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("audit: write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit: write key file: %w", err)
	}
	return f.Close()
}

// LoadVerifier reads a note verifier key file (verifier.key).
func LoadVerifier(path string) (note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: read verifier key: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("audit: verifier key %s: %w", path, err)
	}
	return v, nil
}

// checkpointText is the signed body, in the C2SP tlog-checkpoint layout:
//
//	<origin>\n<tree size, decimal>\n<root hash, base64>\n
func checkpointText(origin string, size int64, root tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(root[:]))
}

// ParseCheckpointText parses the body of a checkpoint note (C2SP tlog-checkpoint: origin,
// decimal size, base64 root hash; this log writes no extension lines and accepts none).
func ParseCheckpointText(text string) (origin string, size int64, root tlog.Hash, err error) {
	return parseCheckpointText(text)
}

func parseCheckpointText(text string) (origin string, size int64, root tlog.Hash, err error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) != 4 || lines[3] != "" || lines[0] == "" {
		return "", 0, root, errors.New("checkpoint text is not 3 lines")
	}
	size, err = strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return "", 0, root, errors.New("checkpoint size malformed")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(b) != len(root) {
		return "", 0, root, errors.New("checkpoint root malformed")
	}
	copy(root[:], b)
	return lines[0], size, root, nil
}

// signCheckpoint signs a checkpoint of the tree (size, root) with s, origin s.Name().
func signCheckpoint(s note.Signer, size int64, root tlog.Hash, now time.Time) (Checkpoint, error) {
	msg, err := note.Sign(&note.Note{Text: checkpointText(s.Name(), size, root)}, s)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return Checkpoint{Size: size, Root: root, Note: msg, Time: now.UTC()}, nil
}

// OpenCheckpoint verifies a signed checkpoint note with v and returns the tree it
// commits to. The origin line must equal v.Name(). Signature failures are the
// sumdb/note errors (*note.InvalidSignatureError, *note.UnverifiedNoteError).
func OpenCheckpoint(msg []byte, v note.Verifier) (size int64, root tlog.Hash, err error) {
	return openCheckpoint(msg, []note.Verifier{v})
}

// openCheckpoint is OpenCheckpoint with several log keys (replicas that once signed with
// keys of their own): one of them must have signed, and the origin is its name.
func openCheckpoint(msg []byte, vs []note.Verifier) (size int64, root tlog.Hash, err error) {
	n, err := note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		return 0, root, fmt.Errorf("audit: checkpoint signature: %w", err)
	}
	origin, size, root, err := parseCheckpointText(n.Text)
	if err != nil {
		return 0, root, fmt.Errorf("audit: %w", err)
	}
	for _, s := range n.Sigs {
		if s.Name == origin {
			return size, root, nil
		}
	}
	return 0, root, fmt.Errorf("audit: checkpoint origin %q, want %q", origin, vs[0].Name())
}

// checkStoredCheckpoint checks that a stored checkpoint's note is signed by one of vs and
// commits to the stored size and root.
func checkStoredCheckpoint(c Checkpoint, vs []note.Verifier) error {
	size, root, err := openCheckpoint(c.Note, vs)
	if err != nil {
		return err
	}
	if size != c.Size || !bytes.Equal(root[:], c.Root[:]) {
		return fmt.Errorf("audit: checkpoint note says size %d root %s, row says size %d root %s", size, root, c.Size, c.Root)
	}
	return nil
}
