package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// JWT-SVID signing keys rotate with overlap. Each key in DATA_DIR/ca/jwt_keys.json has
//
//	published_at  from then on it is in the SPIFFE bundle and the JWKS, before it signs
//	              anything (SPIFFE Federation §4.1: "new keys MUST be published at the
//	              bundle endpoint prior to the keys being used to issue SVIDs");
//	active_from   from then on it signs: the signing key is the newest key whose
//	              active_from has passed;
//
// and a key stays published until every token it signed has expired: a key whose
// successor became active at T is retired at T + MaxJWTTTL + jwtRetireMargin (the margin
// covers a replica that switches up to one maintenance interval late, and clock skew).
// The file also holds the bundle's sequence number (SPIFFE Trust Domain and Bundle
// §4.1.2), raised by one at every change of the published key set.
const (
	jwtKeysFile     = "jwt_keys.json"
	jwtRetireMargin = 5 * time.Minute
	// maxJWTKeys bounds the key set: a clock jump cannot make it grow without end.
	maxJWTKeys = 8
)

// JWTKeyPolicy says when MaintainJWTKeys rotates: the active key signs for Rotation, and
// its successor is published PublishAhead before it takes over.
type JWTKeyPolicy struct {
	Rotation     time.Duration
	PublishAhead time.Duration
}

// Validate checks that the policy can work: a rotation period of at least a minute and a
// publication lead shorter than it.
func (p JWTKeyPolicy) Validate() error {
	if p.Rotation < time.Minute {
		return errors.New("ca: JWT key rotation period must be at least 1m")
	}
	if p.PublishAhead < 0 || p.PublishAhead >= p.Rotation {
		return fmt.Errorf("ca: JWT key publication lead %s must be shorter than the rotation period %s", p.PublishAhead, p.Rotation)
	}
	return nil
}

// JWTKey is one JWT-SVID signing key as published (no private part).
type JWTKey struct {
	KID         string
	Public      crypto.PublicKey
	PublishedAt time.Time
	ActiveFrom  time.Time
	RetireAfter time.Time // zero while no successor has taken over
}

type jwtKeyRecord struct {
	KID         string    `json:"kid"`
	KeyPEM      string    `json:"key_pem"`
	PublishedAt time.Time `json:"published_at"`
	ActiveFrom  time.Time `json:"active_from"`
}

type jwtKeyFileDoc struct {
	Sequence uint64         `json:"bundle_sequence"`
	Keys     []jwtKeyRecord `json:"keys"`
}

type jwtKey struct {
	kid        string
	key        *ecdsa.PrivateKey
	published  time.Time
	activeFrom time.Time
}

// jwtKeySet is an immutable snapshot of the keys, sorted by activeFrom.
type jwtKeySet struct {
	seq  uint64
	keys []jwtKey
}

// retireAt is when keys[i] leaves the bundle (zero: not yet decided).
func (s *jwtKeySet) retireAt(i int) time.Time {
	if i+1 >= len(s.keys) {
		return time.Time{}
	}
	return s.keys[i+1].activeFrom.Add(MaxJWTTTL + jwtRetireMargin)
}

// signer returns the key that signs at now: the newest one already active (the oldest
// if, against the invariant, none is).
func (s *jwtKeySet) signer(now time.Time) jwtKey {
	k := s.keys[0]
	for _, c := range s.keys {
		if !c.activeFrom.After(now) {
			k = c
		}
	}
	return k
}

// published returns the keys in the bundle: every key of the set. A retired key leaves
// the set (and the bundle, with a new sequence number) at the next MaintainJWTKeys.
func (s *jwtKeySet) published() []JWTKey {
	out := make([]JWTKey, 0, len(s.keys))
	for i, k := range s.keys {
		out = append(out, JWTKey{KID: k.kid, Public: k.key.Public(), PublishedAt: k.published, ActiveFrom: k.activeFrom, RetireAfter: s.retireAt(i)})
	}
	return out
}

func newJWTKey(published, activeFrom time.Time) (jwtKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return jwtKey{}, fmt.Errorf("ca: %w", err)
	}
	return jwtKey{kid: keyID(k.Public()), key: k, published: published.UTC(), activeFrom: activeFrom.UTC()}, nil
}

// loadJWTKeys reads DIR/jwt_keys.json; a CA made before key rotation has only
// jwt_key.pem, which becomes the first (active) key of a new file.
func loadJWTKeys(dir string) (*jwtKeySet, error) {
	p := filepath.Join(dir, jwtKeysFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		old, rerr := readKey(filepath.Join(dir, jwtKeyFile))
		if rerr != nil {
			return nil, rerr
		}
		set := &jwtKeySet{seq: 1, keys: []jwtKey{{kid: keyID(old.Public()), key: old}}}
		return set, writeJWTKeys(dir, set)
	}
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	var doc jwtKeyFileDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("ca: %s: %w", p, err)
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf("ca: %s holds no key", p)
	}
	set := &jwtKeySet{seq: doc.Sequence}
	for _, r := range doc.Keys {
		blk, _ := pem.Decode([]byte(r.KeyPEM))
		if blk == nil {
			return nil, fmt.Errorf("ca: %s: key %s: no PEM block", p, r.KID)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		ek, ok := k.(*ecdsa.PrivateKey)
		if err != nil || !ok || ek.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ca: %s: key %s: not an ECDSA P-256 key", p, r.KID)
		}
		if keyID(ek.Public()) != r.KID {
			return nil, fmt.Errorf("ca: %s: key id %s does not match its key", p, r.KID)
		}
		set.keys = append(set.keys, jwtKey{kid: r.KID, key: ek, published: r.PublishedAt, activeFrom: r.ActiveFrom})
	}
	slices.SortStableFunc(set.keys, func(a, b jwtKey) int { return a.activeFrom.Compare(b.activeFrom) })
	return set, nil
}

func writeJWTKeys(dir string, set *jwtKeySet) error {
	doc := jwtKeyFileDoc{Sequence: set.seq}
	for _, k := range set.keys {
		doc.Keys = append(doc.Keys, jwtKeyRecord{KID: k.kid, KeyPEM: string(keyPEM(k.key)), PublishedAt: k.published, ActiveFrom: k.activeFrom})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(filepath.Join(dir, jwtKeysFile), b, 0o600); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}

// JWTKeys returns the published JWT-SVID keys, oldest first.
func (c *CA) JWTKeys() []JWTKey { return c.jwt.Load().published() }

// BundleSequence is the sequence number of the trust domain's SPIFFE bundle.
func (c *CA) BundleSequence() uint64 { return c.jwt.Load().seq }

// JWTKeyChange is what one MaintainJWTKeys call wrote: key ids published and retired.
type JWTKeyChange struct {
	Published []JWTKey
	Retired   []string
	Sequence  uint64 // the bundle's sequence number after the change
}

// MaintainJWTKeys re-reads the key set from disk (another replica may have rotated),
// publishes a successor when the active key is due to hand over within PublishAhead,
// and drops keys whose every token has expired. record, when set, is called with the
// change before it is written, and an error from it leaves the key set as it was: a
// key is never published or retired without its record (a crash in between leaves a
// record of a change that was not made, never the other way round). It returns what
// this call changed (a change another replica wrote is loaded, not returned). Replicas
// sharing DATA_DIR/ca serialize on a lock file, so they agree on one key set.
func (c *CA) MaintainJWTKeys(p JWTKeyPolicy, record func(JWTKeyChange) error) (JWTKeyChange, error) {
	var ch JWTKeyChange
	if err := p.Validate(); err != nil {
		return ch, err
	}
	unlock, err := lockFile(filepath.Join(c.dir, ".jwt.lock"))
	if err != nil {
		return ch, err
	}
	defer unlock()
	set, err := loadJWTKeys(c.dir)
	if err != nil {
		return ch, err
	}
	now := c.now()
	next := &jwtKeySet{seq: set.seq}
	for i, k := range set.keys {
		if r := set.retireAt(i); !r.IsZero() && now.After(r) {
			ch.Retired = append(ch.Retired, k.kid)
			continue
		}
		next.keys = append(next.keys, k)
	}
	newest := next.keys[len(next.keys)-1]
	if !newest.activeFrom.After(now) && !now.Before(newest.activeFrom.Add(p.Rotation-p.PublishAhead)) && len(next.keys) < maxJWTKeys {
		k, err := newJWTKey(now, now.Add(p.PublishAhead))
		if err != nil {
			return ch, err
		}
		next.keys = append(next.keys, k)
		ch.Published = append(ch.Published, JWTKey{KID: k.kid, Public: k.key.Public(), PublishedAt: k.published, ActiveFrom: k.activeFrom})
	}
	if len(ch.Published)+len(ch.Retired) > 0 {
		next.seq++
		ch.Sequence = next.seq
		if record != nil {
			if err := record(ch); err != nil {
				c.jwt.Store(set)
				return JWTKeyChange{}, err
			}
		}
		if err := writeJWTKeys(c.dir, next); err != nil {
			return JWTKeyChange{}, err
		}
	}
	c.jwt.Store(next)
	return ch, nil
}

// lockFile takes an exclusive flock on path (created 0600) and returns its release.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("ca: %w", err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
