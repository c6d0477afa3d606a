package gate

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"sync"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-a2a/warden/internal/jcs"
)

// cardPath is where A2A agent cards are served (A2A 1.0 §8.2, RFC 8615).
const cardPath = "/.well-known/agent-card.json"

// IntentExtensionURI names the signed-intent extension in agent cards
// (docs/intent-spec.md); a client that declares it sends Warden-Intent headers.
const IntentExtensionURI = "https://warden-a2a.dev/ext/intent/v1"

// MaxCardSize bounds a card VerifyCard accepts.
const MaxCardSize = 256 << 10

// cardHeader is the protected header of a card signature (A2A 1.0 §8.4.2; RFC 7515).
// x5c binds the signing key to the agent's SPIFFE ID: it is the signer's X509-SVID chain.
type cardHeader struct {
	Alg string   `json:"alg"`
	Typ string   `json:"typ"`
	X5c []string `json:"x5c"`
}

// cardSigner serves the agent card, declaring the mtls security scheme and the intent
// extension, signed with the gate's current SVID; re-signed after each rotation and
// whenever its source hands out another card.
type cardSigner struct {
	source func(ctx context.Context) (*a2a.AgentCard, error) // the card to serve (the same pointer while unchanged)
	svid   x509svid.Source
	log    *slog.Logger

	mu     sync.Mutex
	serial string
	card   *a2a.AgentCard // the source's card the body was made from
	body   []byte
}

// staticCard is the source of a card declared in the configuration.
func staticCard(card *a2a.AgentCard) func(context.Context) (*a2a.AgentCard, error) {
	c := decorateCard(card)
	return func(context.Context) (*a2a.AgentCard, error) { return c, nil }
}

// decorateCard returns a copy of card without signatures, with the mtls security scheme
// required by every security requirement (alone when the card lists none) and the
// intent extension declared as required.
func decorateCard(card *a2a.AgentCard) *a2a.AgentCard {
	c := *card
	c.Signatures = nil
	c.SecuritySchemes = a2a.NamedSecuritySchemes{}
	for k, v := range card.SecuritySchemes {
		c.SecuritySchemes[k] = v
	}
	c.SecuritySchemes["mtls"] = a2a.MutualTLSSecurityScheme{Description: "SPIFFE X509-SVID mutual TLS (TLS 1.3)"}
	c.SecurityRequirements = nil
	for _, req := range card.SecurityRequirements {
		r := a2a.SecurityRequirements{}
		for k, v := range req {
			r[k] = v
		}
		r["mtls"] = a2a.SecuritySchemeScopes{}
		c.SecurityRequirements = append(c.SecurityRequirements, r)
	}
	if len(c.SecurityRequirements) == 0 {
		c.SecurityRequirements = a2a.SecurityRequirementsOptions{{"mtls": a2a.SecuritySchemeScopes{}}}
	}
	has := false
	for _, e := range c.Capabilities.Extensions {
		has = has || e.URI == IntentExtensionURI
	}
	if !has {
		c.Capabilities.Extensions = append(append([]a2a.AgentExtension(nil), c.Capabilities.Extensions...), a2a.AgentExtension{
			URI: IntentExtensionURI, Required: true,
			Description: "every call carries a signed intent (JWS) in the Warden-Intent header",
		})
	}
	return &c
}

func (s *cardSigner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	svid, err := s.svid.GetX509SVID()
	if err != nil {
		http.Error(w, "no SVID", http.StatusServiceUnavailable)
		return
	}
	card, err := s.source(r.Context())
	if err != nil {
		s.log.Warn("gate: no agent card to serve", "err", err)
		writeRefusal(w, nil, Refusal{Status: http.StatusBadGateway, Reason: ReasonUpstream, Message: err.Error(), DecisionID: newDecisionID()})
		return
	}
	serial := svid.Certificates[0].SerialNumber.String()
	s.mu.Lock()
	if s.serial != serial || s.card != card {
		s.body, err = SignCard(card, svid)
		if err == nil {
			s.serial, s.card = serial, card
		}
	}
	body := s.body
	s.mu.Unlock()
	if body == nil {
		http.Error(w, "card could not be signed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// cardPayload is the JCS form (RFC 8785) of the card without its signatures member:
// what A2A 1.0 §8.4.1 signs.
func cardPayload(raw []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("gate: card: %w", err)
	}
	delete(m, "signatures")
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(b)
}

// SignCard returns the JSON of card with one signature by svid (ES256 for P-256 keys,
// EdDSA for Ed25519): protected header {alg, typ "JOSE", x5c}, signature over
// b64url(header) "." b64url(JCS(card without signatures)) — a JWS with detached payload.
func SignCard(card *a2a.AgentCard, svid *x509svid.SVID) ([]byte, error) {
	c := *card
	c.Signatures = nil
	raw, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	payload, err := cardPayload(raw)
	if err != nil {
		return nil, err
	}
	h := cardHeader{Typ: "JOSE"}
	for _, cert := range svid.Certificates {
		h.X5c = append(h.X5c, base64.StdEncoding.EncodeToString(cert.Raw))
	}
	switch svid.PrivateKey.(type) {
	case *ecdsa.PrivateKey:
		h.Alg = "ES256"
	case ed25519.PrivateKey:
		h.Alg = "EdDSA"
	default:
		return nil, errors.New("gate: card: unsupported key type")
	}
	hb, _ := json.Marshal(h)
	prot := base64.RawURLEncoding.EncodeToString(hb)
	input := prot + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := signJWS(svid.PrivateKey, []byte(input))
	if err != nil {
		return nil, err
	}
	c.Signatures = []a2a.AgentCardSignature{{Protected: prot, Signature: base64.RawURLEncoding.EncodeToString(sig)}}
	return json.Marshal(&c)
}

func signJWS(key crypto.Signer, input []byte) ([]byte, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		d := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			return nil, err
		}
		out := make([]byte, 64) // RFC 7518 §3.4: R || S, 32 bytes each
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out, nil
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input), nil
	}
	return nil, errors.New("gate: unsupported key")
}

// Card verification errors.
var (
	ErrCardUnsigned  = errors.New("gate: card has no signature")
	ErrCardSignature = errors.New("gate: card signature does not verify")
	ErrCardSigner    = errors.New("gate: card signed by another identity")
)

// VerifyCard checks a remote agent card before use (A2A 1.0 §8.4.3): at least one
// signature whose x5c chain is an X509-SVID of want (verified against bundle with
// go-spiffe) and whose ES256/EdDSA signature verifies over the JCS form of the card
// without signatures. It returns the parsed card. Refused: no signature
// (ErrCardUnsigned), a chain that does not verify or names another SPIFFE ID
// (ErrCardSigner), a bad signature or malformed header (ErrCardSignature).
func VerifyCard(raw []byte, bundle x509bundle.Source, want spiffeid.ID) (*a2a.AgentCard, error) {
	if len(raw) > MaxCardSize || tooDeep(raw) || !jcs.Valid(raw) {
		return nil, ErrCardSignature
	}
	var card a2a.AgentCard
	if err := json.Unmarshal(raw, &card); err != nil {
		return nil, fmt.Errorf("gate: card: %w", err)
	}
	if len(card.Signatures) == 0 {
		return nil, ErrCardUnsigned
	}
	payload, err := cardPayload(raw)
	if err != nil {
		return nil, err
	}
	b64payload := base64.RawURLEncoding.EncodeToString(payload)
	last := ErrCardSignature
	for _, sig := range card.Signatures {
		if err := verifyCardSig(sig, b64payload, bundle, want); err != nil {
			last = err
			continue
		}
		return &card, nil
	}
	return nil, last
}

func verifyCardSig(sig a2a.AgentCardSignature, b64payload string, bundle x509bundle.Source, want spiffeid.ID) error {
	hb, err := base64.RawURLEncoding.DecodeString(sig.Protected)
	if err != nil {
		return ErrCardSignature
	}
	var h cardHeader
	dec := json.NewDecoder(bytes.NewReader(hb))
	dec.DisallowUnknownFields()
	if dec.Decode(&h) != nil || len(h.X5c) == 0 || len(h.X5c) > 4 {
		return ErrCardSignature
	}
	var chain [][]byte
	for _, c := range h.X5c {
		der, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return ErrCardSignature
		}
		chain = append(chain, der)
	}
	id, chains, err := x509svid.ParseAndVerify(chain, bundle)
	if err != nil || id != want {
		return ErrCardSigner
	}
	leaf := chains[0][0]
	s, err := base64.RawURLEncoding.DecodeString(sig.Signature)
	if err != nil {
		return ErrCardSignature
	}
	input := []byte(sig.Protected + "." + b64payload)
	switch pub := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if h.Alg != "ES256" || len(s) != 64 {
			return ErrCardSignature
		}
		d := sha256.Sum256(input)
		r, ss := new(big.Int).SetBytes(s[:32]), new(big.Int).SetBytes(s[32:])
		if !ecdsa.Verify(pub, d[:], r, ss) {
			return ErrCardSignature
		}
	case ed25519.PublicKey:
		if h.Alg != "EdDSA" || !ed25519.Verify(pub, input, s) {
			return ErrCardSignature
		}
	default:
		return ErrCardSignature
	}
	return nil
}
