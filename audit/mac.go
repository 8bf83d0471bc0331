package audit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MACer computes and checks the MAC over a record's hash, and supplies the
// key from which secret fingerprints are derived. Implementations: LocalKey
// (a key read from Vault KV at start) and Transit (Vault's transit engine).
type MACer interface {
	// Sign returns one MAC per message, in order.
	Sign(ctx context.Context, msgs []string) ([]string, error)
	// Verify reports, per message, whether its MAC is valid. An error means
	// it could not tell (Vault unreachable), never "invalid".
	Verify(ctx context.Context, msgs, macs []string) ([]bool, error)
	// FingerprintKey returns the key fingerprints are computed with. It is
	// derived from the MAC key so that only holders of the MAC key (or of
	// transit access to it) can compute or confirm a fingerprint.
	FingerprintKey(ctx context.Context) ([]byte, error)
}

// Labels for key derivation; changing them changes every MAC/fingerprint.
const (
	fingerprintLabel = "ecarotator audit fingerprint key v1"
	localMACPrefix   = "hs256:"
)

// ErrShortKey rejects local MAC keys under 32 bytes.
var ErrShortKey = errors.New("audit: MAC key must be at least 32 bytes")

// localKey is an HMAC-SHA256 key held in memory.
type localKey struct{ key []byte }

// LocalKey returns a MACer using key (at least 32 bytes) for HMAC-SHA256.
// MACs look like "hs256:<base64>".
func LocalKey(key []byte) (MACer, error) {
	if len(key) < 32 {
		return nil, ErrShortKey
	}
	return &localKey{key: append([]byte(nil), key...)}, nil
}

func (k *localKey) mac(msg string) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (k *localKey) Sign(_ context.Context, msgs []string) ([]string, error) {
	out := make([]string, len(msgs))
	m := hmac.New(sha256.New, k.key)
	var sum []byte
	for i, msg := range msgs {
		m.Reset()
		m.Write([]byte(msg))
		sum = m.Sum(sum[:0])
		out[i] = localMACPrefix + base64.StdEncoding.EncodeToString(sum)
	}
	return out, nil
}

func (k *localKey) Verify(_ context.Context, msgs, macs []string) ([]bool, error) {
	out := make([]bool, len(msgs))
	m := hmac.New(sha256.New, k.key) // one per batch: Reset reuses the keyed state
	var sum, got []byte
	for i, msg := range msgs {
		raw, ok := strings.CutPrefix(macs[i], localMACPrefix)
		if !ok || base64.StdEncoding.DecodedLen(len(raw)) > 64 {
			continue
		}
		got = got[:cap(got)]
		if len(got) < 64 {
			got = make([]byte, 64)
		}
		n, err := base64.StdEncoding.Decode(got, []byte(raw))
		if err != nil {
			continue
		}
		m.Reset()
		m.Write([]byte(msg))
		sum = m.Sum(sum[:0])
		out[i] = hmac.Equal(got[:n], sum)
	}
	return out, nil
}

func (k *localKey) FingerprintKey(context.Context) ([]byte, error) {
	return k.mac(fingerprintLabel), nil
}

// transit MACs through Vault's transit engine: the key never leaves Vault.
type transit struct {
	c          Vault
	mount, key string
}

// Transit returns a MACer using Vault transit key `key` at mount (default
// "transit"): transit/hmac/<key>/sha2-256 to sign, transit/verify to check,
// in batches. MACs look like "vault:v<N>:<base64>" and stay verifiable after
// the transit key is rotated.
func Transit(c Vault, mount, key string) MACer {
	if mount == "" {
		mount = "transit"
	}
	return &transit{c: c, mount: strings.Trim(mount, "/"), key: key}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func (t *transit) Sign(ctx context.Context, msgs []string) ([]string, error) {
	batch := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		batch[i] = map[string]any{"input": b64(m)}
	}
	p := fmt.Sprintf("%s/hmac/%s/sha2-256", t.mount, t.key)
	s, err := t.c.WriteAPI(ctx, p, map[string]any{"batch_input": batch})
	if err != nil {
		return nil, fmt.Errorf("audit: transit hmac %s: %w", p, err)
	}
	res, err := batchResults(s, len(msgs))
	if err != nil {
		return nil, fmt.Errorf("audit: transit hmac %s: %w", p, err)
	}
	out := make([]string, len(msgs))
	for i, r := range res {
		h, _ := r["hmac"].(string)
		if h == "" {
			e, _ := r["error"].(string)
			return nil, fmt.Errorf("audit: transit hmac %s: item %d: %s", p, i, e)
		}
		out[i] = h
	}
	return out, nil
}

func (t *transit) Verify(ctx context.Context, msgs, macs []string) ([]bool, error) {
	out := make([]bool, len(msgs))
	var batch []map[string]any
	var idx []int
	for i, m := range msgs {
		// Vault rejects a malformed hmac for the whole batch; anything not
		// shaped like a transit MAC is simply invalid.
		if !strings.HasPrefix(macs[i], "vault:v") {
			continue
		}
		batch = append(batch, map[string]any{"input": b64(m), "hmac": macs[i]})
		idx = append(idx, i)
	}
	if len(batch) == 0 {
		return out, nil
	}
	p := fmt.Sprintf("%s/verify/%s/sha2-256", t.mount, t.key)
	s, err := t.c.WriteAPI(ctx, p, map[string]any{"batch_input": batch})
	if err != nil {
		return nil, fmt.Errorf("audit: transit verify %s: %w", p, err)
	}
	res, err := batchResults(s, len(batch))
	if err != nil {
		return nil, fmt.Errorf("audit: transit verify %s: %w", p, err)
	}
	for j, r := range res {
		v, _ := r["valid"].(bool)
		out[idx[j]] = v
	}
	return out, nil
}

// FingerprintKey is the transit HMAC of a fixed label under version 1 of
// the key, so it stays the same after the transit key is rotated.
func (t *transit) FingerprintKey(ctx context.Context) ([]byte, error) {
	p := fmt.Sprintf("%s/hmac/%s/sha2-256", t.mount, t.key)
	s, err := t.c.WriteAPI(ctx, p, map[string]any{"input": b64(fingerprintLabel), "key_version": 1})
	if err != nil {
		return nil, fmt.Errorf("audit: transit fingerprint key: %w", err)
	}
	if s == nil {
		return nil, errors.New("audit: transit fingerprint key: empty response")
	}
	h, _ := s["hmac"].(string)
	parts := strings.SplitN(h, ":", 3)
	if len(parts) != 3 {
		return nil, errors.New("audit: transit fingerprint key: unexpected hmac format")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("audit: transit fingerprint key: %w", err)
	}
	return raw, nil
}

// signLike signs msg the way mac was made: for transit, with the key
// version named in mac ("vault:v3:…"). The writer checks its last record
// this way at open, which needs only the hmac capability the daemon's
// policy grants (not transit/verify).
func (t *transit) signLike(ctx context.Context, msg, mac string) (string, error) {
	rest, ok := strings.CutPrefix(mac, "vault:v")
	ver, _, ok2 := strings.Cut(rest, ":")
	n, err := strconv.Atoi(ver)
	if !ok || !ok2 || err != nil || n <= 0 {
		return "", nil // not a transit MAC: cannot match
	}
	p := fmt.Sprintf("%s/hmac/%s/sha2-256", t.mount, t.key)
	s, err := t.c.WriteAPI(ctx, p, map[string]any{"input": b64(msg), "key_version": n})
	if err != nil {
		return "", fmt.Errorf("audit: transit hmac %s: %w", p, err)
	}
	if s == nil {
		return "", errors.New("audit: transit hmac: empty response")
	}
	h, _ := s["hmac"].(string)
	return h, nil
}

func (k *localKey) signLike(ctx context.Context, msg, _ string) (string, error) {
	m, err := k.Sign(ctx, []string{msg})
	if err != nil {
		return "", err
	}
	return m[0], nil
}

// checkOne reports whether mac is the MAC of msg, preferring a re-sign and
// compare (signLike) over Verify.
func checkOne(ctx context.Context, m MACer, msg, mac string) (bool, error) {
	if sl, ok := m.(interface {
		signLike(ctx context.Context, msg, mac string) (string, error)
	}); ok {
		got, err := sl.signLike(ctx, msg, mac)
		if err != nil {
			return false, err
		}
		return hmac.Equal([]byte(got), []byte(mac)), nil
	}
	ok, err := m.Verify(ctx, []string{msg}, []string{mac})
	if err != nil {
		return false, err
	}
	return ok[0], nil
}

func batchResults(s map[string]any, n int) ([]map[string]any, error) {
	if s == nil {
		return nil, errors.New("empty response")
	}
	list, _ := s["batch_results"].([]any)
	if len(list) != n {
		return nil, fmt.Errorf("got %d batch results, want %d", len(list), n)
	}
	out := make([]map[string]any, n)
	for i, it := range list {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("batch result %d: unexpected type", i)
		}
		out[i] = m
	}
	return out, nil
}

// KeyField is the KV field holding a base64 MAC key.
const KeyField = "key"

// ErrNoKey is returned by LoadKVKey when the path holds no key.
var ErrNoKey = errors.New("audit: no MAC key at the KV path")

// LoadKVKey reads the base64 MAC key in field "key" of KV v2 path at mount.
func LoadKVKey(ctx context.Context, c Vault, mount, path string) ([]byte, error) {
	data, _, err := c.ReadDoc(ctx, kvPath(mount, path))
	if isNotFound(err) {
		return nil, fmt.Errorf("%w: %s/%s", ErrNoKey, mount, path)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read MAC key %s/%s: %w", mount, path, err)
	}
	v, _ := data[KeyField].(string)
	if v == "" {
		return nil, fmt.Errorf("%w: %s/%s has no field %q", ErrNoKey, mount, path, KeyField)
	}
	key, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("audit: MAC key %s/%s: field %q is not base64", mount, path, KeyField)
	}
	if len(key) < 32 {
		return nil, ErrShortKey
	}
	return key, nil
}

// EnsureKVKey returns the MAC key at path, creating a random 32-byte key
// there (check-and-set 0, so concurrent replicas agree on one key) when the
// path does not exist yet.
func EnsureKVKey(ctx context.Context, c Vault, mount, path string) ([]byte, error) {
	key, err := LoadKVKey(ctx, c, mount, path)
	if !errors.Is(err, ErrNoKey) {
		return key, err
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("audit: generate MAC key: %w", err)
	}
	_, err = c.WriteDoc(ctx, kvPath(mount, path), map[string]any{KeyField: base64.StdEncoding.EncodeToString(fresh)}, 0)
	if err != nil && !isCASConflict(err) {
		return nil, fmt.Errorf("audit: create MAC key %s/%s: %w", mount, path, err)
	}
	// Read back: on a conflict another replica's key won.
	return LoadKVKey(ctx, c, mount, path)
}

// Fingerprint formats: "fp1:" followed by the base64url (no padding) of the
// first 16 bytes of HMAC-SHA256(fingerprint key, secret).
const fingerprintPrefix = "fp1:"

// FingerprintWith computes the fingerprint of raw under fpKey (from
// MACer.FingerprintKey). Exported for `ecarotator audit fingerprint`.
func FingerprintWith(fpKey []byte, raw string) string {
	if raw == "" {
		return ""
	}
	m := hmac.New(sha256.New, fpKey)
	m.Write([]byte(raw))
	return fingerprintPrefix + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}
