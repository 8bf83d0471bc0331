package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Signatures over the chain head (anchors and in-file checkpoint records).
//
// The per-record MAC is symmetric: whoever can compute it can forge a
// record. It therefore stays with the daemon. What auditors check instead
// is an asymmetric signature over the chain head: the daemon signs with a
// Vault transit ed25519 key it can use but never read, and anyone holding
// the public key verifies — offline, with no Vault right that could produce
// a signature or a MAC. Because every record is hash-linked to the one
// before it, a valid signature over (chain, seq, hash) vouches for every
// record up to seq.

// Signer signs chain-head statements.
type Signer interface {
	// SignHead returns the signature of msg.
	SignHead(ctx context.Context, msg string) (string, error)
}

// SigVerifier checks chain-head signatures.
type SigVerifier interface {
	// VerifyHead reports whether sig is a valid signature of msg. An error
	// means it could not tell (Vault unreachable), never "invalid".
	VerifyHead(ctx context.Context, msg, sig string) (bool, error)
	// Mode names the scheme for reports: "ed25519" or "hmac (KV key: weaker)".
	Mode() string
}

// Signing modes, as reported by Verify and stored in anchors.
const (
	ModeEd25519 = "ed25519"
	ModeHMAC    = "hmac"
)

// transitSigner signs with a Vault transit ed25519 key (transit/sign/<key>).
type transitSigner struct {
	c          Vault
	mount, key string
}

// TransitSigner returns a Signer using the transit key `key` (type
// ed25519) at mount (default "transit"). Signatures look like
// "vault:v<N>:<base64>" and name the key version that made them.
func TransitSigner(c Vault, mount, key string) Signer {
	if mount == "" {
		mount = "transit"
	}
	return &transitSigner{c: c, mount: strings.Trim(mount, "/"), key: key}
}

// Mode names the scheme (ed25519).
func (t *transitSigner) Mode() string { return ModeEd25519 }

func (t *transitSigner) SignHead(ctx context.Context, msg string) (string, error) {
	p := fmt.Sprintf("%s/sign/%s", t.mount, t.key)
	data, err := t.c.WriteAPI(ctx, p, map[string]any{"input": b64(msg)})
	if err != nil {
		return "", fmt.Errorf("audit: transit sign %s: %w", p, err)
	}
	if data == nil {
		return "", fmt.Errorf("audit: transit sign %s: empty response", p)
	}
	sig, _ := data["signature"].(string)
	if !strings.HasPrefix(sig, "vault:v") {
		return "", fmt.Errorf("audit: transit sign %s: unexpected signature format", p)
	}
	return sig, nil
}

// macSigner is the lab mode (audit.mac.kv_path): chain heads are MAC'd with
// the same symmetric key as the records. Anyone who can read that key can
// forge both; Verify reports it as the weaker mode.
type macSigner struct{ m MACer }

// MACSigner returns a Signer and SigVerifier that use m (a KV key) for
// chain heads: the lab mode, weaker than TransitSigner.
func MACSigner(m MACer) interface {
	Signer
	SigVerifier
} {
	return macSigner{m: m}
}

func (s macSigner) SignHead(ctx context.Context, msg string) (string, error) {
	out, err := s.m.Sign(ctx, []string{msg})
	if err != nil {
		return "", err
	}
	return out[0], nil
}

func (s macSigner) VerifyHead(ctx context.Context, msg, sig string) (bool, error) {
	ok, err := s.m.Verify(ctx, []string{msg}, []string{sig})
	if err != nil {
		return false, err
	}
	return ok[0], nil
}

func (macSigner) Mode() string { return ModeHMAC }

// PublicKeys is the public half of the transit signing key, one ed25519
// key per key version. It verifies offline.
type PublicKeys struct {
	Key      string                    // transit key name (informational)
	Versions map[int]ed25519.PublicKey // by key version
}

var _ SigVerifier = (*PublicKeys)(nil)

// Mode implements SigVerifier.
func (*PublicKeys) Mode() string { return ModeEd25519 }

// VerifyHead checks a "vault:v<N>:<base64>" ed25519 signature against the
// public key of version N. It never needs Vault.
func (k *PublicKeys) VerifyHead(_ context.Context, msg, sig string) (bool, error) {
	rest, ok := strings.CutPrefix(sig, "vault:v")
	ver, raw, ok2 := strings.Cut(rest, ":")
	n, err := strconv.Atoi(ver)
	if !ok || !ok2 || err != nil {
		return false, nil
	}
	pub, ok := k.Versions[n]
	if !ok {
		return false, nil
	}
	s, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(s) != ed25519.SignatureSize {
		return false, nil
	}
	return ed25519.Verify(pub, []byte(msg), s), nil
}

// ErrNotEd25519 rejects a signing key of another type.
var ErrNotEd25519 = errors.New("audit: the signing key is not an ed25519 key")

// ReadTransitPublicKeys reads the public keys of the transit key at
// <mount>/keys/<key>: only read on that path is needed, which computes
// nothing.
func ReadTransitPublicKeys(ctx context.Context, c Vault, mount, key string) (*PublicKeys, error) {
	if mount == "" {
		mount = "transit"
	}
	p := fmt.Sprintf("%s/keys/%s", strings.Trim(mount, "/"), key)
	data, err := c.ReadAPI(ctx, p)
	if isNotFound(err) {
		return nil, fmt.Errorf("audit: read public key %s: no such key", p)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read public key %s: %w", p, err)
	}
	if typ, _ := data["type"].(string); typ != "ed25519" {
		return nil, fmt.Errorf("%w: %s has type %q", ErrNotEd25519, p, typ)
	}
	keys, _ := data["keys"].(map[string]any)
	out := &PublicKeys{Key: key, Versions: map[int]ed25519.PublicKey{}}
	for v, raw := range keys {
		n, err := strconv.Atoi(v)
		m, _ := raw.(map[string]any)
		pk, _ := m["public_key"].(string)
		b, berr := base64.StdEncoding.DecodeString(pk)
		if err != nil || berr != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("audit: read public key %s: version %q is not an ed25519 public key", p, v)
		}
		out.Versions[n] = ed25519.PublicKey(b)
	}
	if len(out.Versions) == 0 {
		return nil, fmt.Errorf("audit: read public key %s: no key versions", p)
	}
	return out, nil
}

// publicKeyFile is the JSON form `ecarotator audit public-key` writes.
type publicKeyFile struct {
	Format   string            `json:"format"`
	Key      string            `json:"key"`
	Type     string            `json:"type"`
	Versions map[string]string `json:"versions"` // version → base64 public key
}

const publicKeyFormat = "ecarotator-audit-public-key/v1"

// WritePublicKeys writes k as the JSON file auditors keep for offline
// verification.
func WritePublicKeys(w io.Writer, k *PublicKeys) error {
	f := publicKeyFile{Format: publicKeyFormat, Key: k.Key, Type: "ed25519", Versions: map[string]string{}}
	vs := make([]int, 0, len(k.Versions))
	for v := range k.Versions {
		vs = append(vs, v)
	}
	sort.Ints(vs)
	for _, v := range vs {
		f.Versions[strconv.Itoa(v)] = base64.StdEncoding.EncodeToString(k.Versions[v])
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(f)
}

// maxPublicKeyFile bounds a public key file.
const maxPublicKeyFile = 64 << 10

// ParsePublicKeys reads a public key file: the JSON written by
// WritePublicKeys, or a PEM "PUBLIC KEY" (PKIX ed25519), which then counts
// as key version 1.
func ParsePublicKeys(b []byte) (*PublicKeys, error) {
	if len(b) > maxPublicKeyFile {
		return nil, fmt.Errorf("audit: public key file larger than %d bytes", maxPublicKeyFile)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("audit: public key file: PEM block %q, want PUBLIC KEY", blk.Type)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("audit: public key file: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, ErrNotEd25519
		}
		return &PublicKeys{Versions: map[int]ed25519.PublicKey{1: pub}}, nil
	}
	var f publicKeyFile
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, errors.New("audit: public key file: neither PEM nor the JSON of `ecarotator audit public-key`")
	}
	if f.Format != publicKeyFormat || f.Type != "ed25519" {
		return nil, fmt.Errorf("audit: public key file: format %q type %q, want %s ed25519", f.Format, f.Type, publicKeyFormat)
	}
	out := &PublicKeys{Key: f.Key, Versions: map[int]ed25519.PublicKey{}}
	for v, s := range f.Versions {
		n, err := strconv.Atoi(v)
		raw, berr := base64.StdEncoding.DecodeString(s)
		if err != nil || n <= 0 || berr != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("audit: public key file: version %q is not an ed25519 public key", v)
		}
		out.Versions[n] = ed25519.PublicKey(raw)
	}
	if len(out.Versions) == 0 {
		return nil, errors.New("audit: public key file: no key versions")
	}
	return out, nil
}
