package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Witness cosignatures follow C2SP tlog-cosignature (Ed25519, "cosignature/v1"):
//
//   - key ID = SHA-256(<name> || "\n" || 0x04 || 32-byte public key)[:4]
//   - signature = timestamp (u64, big-endian, POSIX seconds) || Ed25519 signature (64 bytes)
//   - signed message = "cosignature/v1\n" || "time <timestamp>\n" || the checkpoint's note
//     body (its text lines, final newline included, no signature lines)
//
// A cosignature is one more note signature line on the checkpoint, so a cosigned
// checkpoint opens with note.Open given the log's verifier and the witnesses' verifiers
// (a note.Verifier of type 0x04, NewCosignatureVerifier). golang.org/x/mod v0.43.0's
// sumdb/note knows only type 0x01 keys, hence this file.
const (
	algCosignatureV1 = 0x04
	cosigHeader      = "cosignature/v1\n"
	cosigSigSize     = 8 + ed25519.SignatureSize
)

// Witness key files: PRIVATE+KEY+<name>+<key ID hex>+base64(0x04 || seed) for the signer
// (mode 0600, never logged) and the C2SP vkey <name>+<key ID hex>+base64(0x04 || public
// key) for verifiers.

// GenerateCosignerKey returns a new witness key pair named name, as a signer key and a
// verifier key (vkey) string.
func GenerateCosignerKey(name string) (skey, vkey string, err error) {
	if !validNoteName(name) {
		return "", "", fmt.Errorf("audit: witness name %q: must be non-empty with no spaces or '+'", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	id := cosignerKeyID(name, pub)
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, id, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, priv.Seed()...)))
	vkey = fmt.Sprintf("%s+%08x+%s", name, id, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
	return skey, vkey, nil
}

func validNoteName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// cosignerKeyID is SHA-256(name || "\n" || 0x04 || public key)[:4].
func cosignerKeyID(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// CosignatureSigner is a witness's note.Signer: Sign returns timestamp || signature of
// the cosignature/v1 message, with the time from Now.
type CosignatureSigner struct {
	name string
	id   uint32
	key  ed25519.PrivateKey
	// Now is the clock of the timestamp; default time.Now.
	Now func() time.Time
}

var _ note.Signer = (*CosignatureSigner)(nil)

// NewCosignatureSigner parses a witness signer key (GenerateCosignerKey). The error
// never contains the key.
func NewCosignatureSigner(skey string) (*CosignatureSigner, error) {
	parts := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" || !validNoteName(parts[2]) {
		return nil, errors.New("audit: malformed witness signer key")
	}
	k, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(k) != 1+ed25519.SeedSize || k[0] != algCosignatureV1 {
		return nil, errors.New("audit: malformed witness signer key")
	}
	priv := ed25519.NewKeyFromSeed(k[1:])
	id := cosignerKeyID(parts[2], priv.Public().(ed25519.PublicKey))
	if fmt.Sprintf("%08x", id) != parts[3] {
		return nil, errors.New("audit: witness signer key: key ID does not match the key")
	}
	return &CosignatureSigner{name: parts[2], id: id, key: priv}, nil
}

func (s *CosignatureSigner) Name() string    { return s.name }
func (s *CosignatureSigner) KeyHash() uint32 { return s.id }

// Sign signs a checkpoint note body (note.Sign passes the text).
func (s *CosignatureSigner) Sign(msg []byte) ([]byte, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := now().Unix()
	if ts < 0 {
		return nil, errors.New("audit: cosignature time before 1970")
	}
	out := make([]byte, 8, cosigSigSize)
	binary.BigEndian.PutUint64(out, uint64(ts))
	return append(out, ed25519.Sign(s.key, cosignedMessage(uint64(ts), msg))...), nil
}

// VerifierKey returns the C2SP vkey of the signer's public key.
func (s *CosignatureSigner) VerifierKey() string {
	pub := s.key.Public().(ed25519.PublicKey)
	return fmt.Sprintf("%s+%08x+%s", s.name, s.id, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
}

func cosignedMessage(ts uint64, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(cosigHeader)
	b.WriteString("time " + strconv.FormatUint(ts, 10) + "\n")
	b.Write(body)
	return b.Bytes()
}

// cosignatureVerifier checks cosignature/v1 signatures of one witness key.
type cosignatureVerifier struct {
	name string
	id   uint32
	key  ed25519.PublicKey
}

func (v *cosignatureVerifier) Name() string    { return v.name }
func (v *cosignatureVerifier) KeyHash() uint32 { return v.id }
func (v *cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != cosigSigSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig)
	if ts > 1<<63-1 {
		return false
	}
	return ed25519.Verify(v.key, cosignedMessage(ts, msg), sig[8:])
}

// NewCosignatureVerifier parses a witness's C2SP vkey (signature type 0x04).
func NewCosignatureVerifier(vkey string) (note.Verifier, error) {
	parts := strings.SplitN(strings.TrimSpace(vkey), "+", 3)
	if len(parts) != 3 || !validNoteName(parts[0]) || len(parts[1]) != 8 {
		return nil, errors.New("audit: malformed witness verifier key")
	}
	k, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(k) != 1+ed25519.PublicKeySize || k[0] != algCosignatureV1 {
		return nil, errors.New("audit: witness verifier key is not an Ed25519 cosignature/v1 (type 0x04) key")
	}
	pub := ed25519.PublicKey(k[1:])
	id := cosignerKeyID(parts[0], pub)
	if fmt.Sprintf("%08x", id) != parts[1] {
		return nil, errors.New("audit: witness verifier key: key ID does not match the key")
	}
	return &cosignatureVerifier{name: parts[0], id: id, key: pub}, nil
}

// IsCosignatureVerifier reports whether v checks witness cosignatures (not log signatures).
func IsCosignatureVerifier(v note.Verifier) bool {
	_, ok := v.(*cosignatureVerifier)
	return ok
}

// CosignatureTime returns the timestamp inside a cosignature/v1 note signature.
func CosignatureTime(sig note.Signature) (time.Time, error) {
	b, err := base64.StdEncoding.DecodeString(sig.Base64)
	if err != nil || len(b) != 4+cosigSigSize {
		return time.Time{}, errors.New("audit: not a cosignature/v1 signature")
	}
	ts := binary.BigEndian.Uint64(b[4:])
	if ts > 1<<62 {
		return time.Time{}, errors.New("audit: cosignature timestamp out of range")
	}
	return time.Unix(int64(ts), 0).UTC(), nil
}

// SignatureLines renders note signatures as note signature lines ("— name base64\n").
func SignatureLines(sigs []note.Signature) []byte {
	var b bytes.Buffer
	for _, s := range sigs {
		b.WriteString("— " + s.Name + " " + s.Base64 + "\n")
	}
	return b.Bytes()
}

// ParseSignatureLines parses a sequence of note signature lines, as a tlog-witness
// add-checkpoint response carries them. Key hashes are taken from the signatures.
func ParseSignatureLines(b []byte) ([]note.Signature, error) {
	var out []note.Signature
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, errors.New("audit: signature lines must end in a newline")
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		rest, ok := strings.CutPrefix(line, "— ")
		name, b64, ok2 := strings.Cut(rest, " ")
		raw, err := base64.StdEncoding.DecodeString(b64)
		if !ok || !ok2 || err != nil || !validNoteName(name) || len(raw) < 5 {
			return nil, fmt.Errorf("audit: malformed signature line %q", line)
		}
		out = append(out, note.Signature{Name: name, Hash: binary.BigEndian.Uint32(raw), Base64: b64})
	}
	return out, nil
}

// WithCosignatures appends cosignatures to a signed checkpoint note (msg ends with its
// signature lines).
func WithCosignatures(msg []byte, cs []Cosignature) []byte {
	sigs := make([]note.Signature, len(cs))
	for i, c := range cs {
		sigs[i] = c.Sig
	}
	return append(bytes.Clone(msg), SignatureLines(sigs)...)
}
