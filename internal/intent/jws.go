package intent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/warden-a2a/warden/internal/jcs"
)

// Algorithms (RFC 7518 section 3.1, RFC 8037 section 3.1). Nothing else is accepted.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
)

// Type is the JWS typ header of an intent (RFC 8725 section 3.11 explicit typing).
const Type = "intent+jwt"

// MaxTokenSize is the largest compact JWS Verify reads, in bytes.
const MaxTokenSize = 8 << 10

// The protected headers Sign emits: the RFC 8785 canonical JSON of {alg, typ}, in
// base64url. A received header equal to one of these takes the fast path.
var (
	headerEdDSA = b64(`{"alg":"EdDSA","typ":"intent+jwt"}`)
	headerES256 = b64(`{"alg":"ES256","typ":"intent+jwt"}`)
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

var strictB64 = base64.RawURLEncoding.Strict()

// parseHeader returns the alg of a protected header (base64url text). The header must
// be a strict JSON object (no duplicate members) holding exactly alg and typ, typ equal
// to Type. crit, jku, jwk, x5u, x5c, kid and every other member are refused: the key
// comes only from the peer certificate.
func parseHeader(h string) (string, *Error) {
	switch h {
	case headerEdDSA:
		return AlgEdDSA, nil
	case headerES256:
		return AlgES256, nil
	}
	raw, err := strictB64.DecodeString(h)
	if err != nil {
		return "", refuse(ReasonMalformed, "header is not base64url")
	}
	canon, err := jcs.Transform(raw)
	if err != nil {
		return "", refuse(ReasonMalformed, "header: "+err.Error())
	}
	d := decoder{s: string(canon)}
	var alg, typ string
	var algSet, typSet bool
	d.members(func(k string) {
		switch k {
		case "alg":
			alg, algSet = d.str(), true
		case "typ":
			typ, typSet = d.str(), true
		default:
			d.fail(ReasonMalformed, fmt.Sprintf("header parameter %q not allowed", k))
		}
	})
	switch {
	case d.err != nil:
		return "", d.err
	case !algSet || !typSet:
		return "", refuse(ReasonMalformed, "header needs alg and typ")
	case typ != Type:
		return "", refuse(ReasonMalformed, "typ must be "+Type)
	case alg != AlgEdDSA && alg != AlgES256:
		return "", refuse(ReasonAlgNotAllowed, fmt.Sprintf("alg %.20q", alg))
	}
	return alg, nil
}

// splitCompact splits a compact JWS into its three base64url segments.
func splitCompact(token string) (header, payload, sig string, ok bool) {
	i := strings.IndexByte(token, '.')
	if i < 0 {
		return "", "", "", false
	}
	j := strings.IndexByte(token[i+1:], '.')
	if j < 0 {
		return "", "", "", false
	}
	j += i + 1
	if strings.IndexByte(token[j+1:], '.') >= 0 {
		return "", "", "", false
	}
	return token[:i], token[i+1 : j], token[j+1:], true
}

// verifySig checks sig over signingInput with pub, for alg. ES256 signatures are the
// 64-byte r||s of RFC 7518 section 3.4, converted to ASN.1 for ecdsa.VerifyASN1.
func verifySig(alg string, pub crypto.PublicKey, signingInput, sig []byte) *Error {
	switch alg {
	case AlgEdDSA:
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return refuse(ReasonAlgNotAllowed, "EdDSA token, certificate key is not Ed25519")
		}
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(k, signingInput, sig) {
			return refuse(ReasonBadSignature, "")
		}
	case AlgES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			return refuse(ReasonAlgNotAllowed, "ES256 token, certificate key is not P-256")
		}
		if len(sig) != 64 {
			return refuse(ReasonBadSignature, "ES256 signature must be 64 bytes")
		}
		var der [72]byte
		h := sha256.Sum256(signingInput)
		if !ecdsa.VerifyASN1(k, h[:], rawToASN1(der[:0], sig)) {
			return refuse(ReasonBadSignature, "")
		}
	default:
		return refuse(ReasonAlgNotAllowed, "")
	}
	return nil
}

// rawToASN1 encodes r||s (32 bytes each) as the DER SEQUENCE { INTEGER r, INTEGER s }.
func rawToASN1(dst, sig []byte) []byte {
	integer := func(b []byte) []byte {
		for len(b) > 1 && b[0] == 0 {
			b = b[1:]
		}
		return b
	}
	r, s := integer(sig[:32]), integer(sig[32:])
	rl, sl := len(r), len(s)
	if r[0]&0x80 != 0 {
		rl++
	}
	if s[0]&0x80 != 0 {
		sl++
	}
	dst = append(dst, 0x30, byte(2+rl+2+sl), 0x02, byte(rl))
	if rl > len(r) {
		dst = append(dst, 0)
	}
	dst = append(dst, r...)
	dst = append(dst, 0x02, byte(sl))
	if sl > len(s) {
		dst = append(dst, 0)
	}
	return append(dst, s...)
}

// Sign returns the compact JWS of c signed with key, an Ed25519 or ECDSA P-256 key
// (typically the private key of the sender's X509-SVID). c must be complete: Sign
// refuses claims that Verify would refuse as malformed.
func Sign(c *Claims, key crypto.Signer) (string, error) {
	if err := c.checkShape(); err != nil {
		return "", err
	}
	var header string
	switch k := key.Public().(type) {
	case ed25519.PublicKey:
		header = headerEdDSA
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", errors.New("intent: ECDSA key must be P-256")
		}
		header = headerES256
	default:
		return "", fmt.Errorf("intent: unsupported key type %T", k)
	}
	var pbuf [1024]byte
	payload := c.AppendCanonical(pbuf[:0])
	enc := base64.RawURLEncoding
	n := len(header) + 1 + enc.EncodedLen(len(payload))
	out := make([]byte, n, n+1+enc.EncodedLen(64))
	copy(out, header)
	out[len(header)] = '.'
	enc.Encode(out[len(header)+1:], payload)
	sig, err := signRaw(key, header == headerES256, out)
	if err != nil {
		return "", fmt.Errorf("intent: sign: %w", err)
	}
	out = append(out, '.')
	out = enc.AppendEncode(out, sig)
	if len(out) > MaxTokenSize {
		return "", refuse(ReasonTooLarge, "signed intent exceeds MaxTokenSize")
	}
	return string(out), nil
}

func signRaw(key crypto.Signer, es256 bool, msg []byte) ([]byte, error) {
	if !es256 {
		if k, ok := key.(ed25519.PrivateKey); ok {
			return ed25519.Sign(k, msg), nil
		}
		return key.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	h := sha256.Sum256(msg)
	der, err := key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return asn1ToRaw(der)
}

// asn1ToRaw converts an ASN.1 ECDSA P-256 signature to the 64-byte r||s form.
func asn1ToRaw(der []byte) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, err
	}
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.BitLen() > 256 || sig.S.BitLen() > 256 {
		return nil, errors.New("bad ECDSA signature")
	}
	out := make([]byte, 64)
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out, nil
}
