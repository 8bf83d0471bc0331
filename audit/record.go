package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// SchemaVersion is the record format version written in every record's "v".
const SchemaVersion = 1

// EventRepair is the record a writer appends after an operator-approved
// repair of a torn last line (see Options.RepairTornTail). It is not a
// domain event, so it lives here rather than in rotator.
const EventRepair rotator.EventType = "audit.repair"

// ZeroHash is the prev_hash of the first record of a chain (seq 1).
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// MaxLineBytes bounds one record line; longer lines are rejected by the
// parser (and never written).
const MaxLineBytes = 1 << 20

// Record is one line of the audit trail: a rotator.Event plus the chain
// fields. Its JSON form is canonical (see AppendCanonical).
type Record struct {
	V   int    `json:"v"`
	Seq uint64 `json:"seq"`
	rotator.Event
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
	MAC      string `json:"mac"`
}

// Errors returned by ParseLine; a *LineError wraps one of them.
var (
	ErrMalformed    = errors.New("malformed record")
	ErrHashMismatch = errors.New("hash does not match record content")
	ErrVersion      = errors.New("unsupported record version")
)

// hashMarker separates the hashed body of a line from its hash and MAC.
// Inside JSON strings a quote is always escaped, so these bytes can only
// occur at a structural position; a "hash" key inside details is possible,
// which is why the parser takes the last occurrence and then checks that
// the suffix has exactly the expected shape.
var hashMarker = []byte(`,"hash":"`)

// AppendCanonical appends the canonical encoding of r without its hash and
// mac to dst and returns it. The canonical encoding is:
//
//   - a JSON object without insignificant whitespace, members in
//     lexicographic order of their keys (nested objects too: actor, details);
//   - optional members (every rotator.Event field tagged omitempty) left out
//     when empty; v, seq, event, time, actor and prev_hash always present;
//   - strings escaped as encoding/json does (HTML characters escaped);
//   - time in RFC 3339 with nanoseconds, UTC.
//
// The record's hash is the hex SHA-256 of exactly these bytes. A line on
// disk is this encoding with its closing brace replaced by
// `,"hash":"<hex>","mac":"<mac>"}` — so a verifier hashes the line's bytes
// up to the last `,"hash":"` plus "}", without re-encoding anything.
func AppendCanonical(dst []byte, r *Record) []byte {
	e := &r.Event
	dst = append(dst, `{"actor":`...)
	dst = appendActor(dst, e.Actor)
	str := func(key, v string) {
		if v != "" {
			dst = append(dst, ',', '"')
			dst = append(dst, key...)
			dst = append(dst, '"', ':')
			dst = appendString(dst, v)
		}
	}
	str("app", e.App)
	str("consumer_key", e.ConsumerKey)
	if len(e.Details) > 0 {
		dst = append(dst, `,"details":`...)
		dst = appendDetails(dst, e.Details)
	}
	str("eca", e.ECA)
	str("error", e.Error)
	dst = append(dst, `,"event":`...)
	dst = appendString(dst, string(e.Type))
	str("fingerprint", e.Fingerprint)
	str("org", e.Org)
	str("outcome", string(e.Outcome))
	dst = append(dst, `,"prev_hash":`...)
	dst = appendString(dst, r.PrevHash)
	str("rotation_id", e.RotationID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	str("step", string(e.Step))
	dst = append(dst, `,"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","v":`...)
	dst = strconv.AppendInt(dst, int64(r.V), 10)
	str("vault_path", e.VaultPath)
	if e.VaultVersion != 0 {
		dst = append(dst, `,"vault_version":`...)
		dst = strconv.AppendInt(dst, int64(e.VaultVersion), 10)
	}
	return append(dst, '}')
}

func appendActor(dst []byte, a rotator.Actor) []byte {
	dst = append(dst, '{')
	if a.Identity != "" {
		dst = append(dst, `"identity":`...)
		dst = appendString(dst, a.Identity)
		dst = append(dst, ',')
	}
	dst = append(dst, `"kind":`...)
	dst = appendString(dst, string(a.Kind))
	if a.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, a.Reason)
	}
	return append(dst, '}')
}

func appendDetails(dst []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, m[k])
	}
	return append(dst, '}')
}

// appendString appends s as a JSON string, escaped exactly like
// encoding/json (which cannot fail on a string).
func appendString(dst []byte, s string) []byte {
	if isPlainASCII(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

// isPlainASCII reports whether s needs no JSON escaping (the fast path).
func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// HashCanonical returns the hex SHA-256 of a canonical body.
func HashCanonical(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// hashBody hashes an unclosed canonical body followed by "}".
func hashBody(open []byte) string {
	h := sha256.New()
	h.Write(open)
	h.Write([]byte{'}'})
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// encodeLine seals r: it sets r.Hash from the canonical body, asks sign for
// the MAC of the hash, and returns the full line with a trailing newline.
func encodeLine(buf []byte, r *Record, sign func(hash string) (string, error)) ([]byte, error) {
	buf = AppendCanonical(buf[:0], r)
	r.Hash = HashCanonical(buf)
	mac, err := sign(r.Hash)
	if err != nil {
		return nil, err
	}
	r.MAC = mac
	buf = buf[:len(buf)-1] // drop the closing brace
	buf = append(buf, hashMarker...)
	buf = append(buf, r.Hash...)
	buf = append(buf, `","mac":`...)
	buf = appendString(buf, mac)
	buf = append(buf, '}', '\n')
	return buf, nil
}

// LineError says why a line could not be accepted.
type LineError struct {
	Err    error  // ErrMalformed, ErrHashMismatch or ErrVersion
	Detail string // human-readable specifics
}

func (e *LineError) Error() string {
	if e.Detail == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Detail
}

func (e *LineError) Unwrap() error { return e.Err }

func malformed(format string, args ...any) error {
	return &LineError{Err: ErrMalformed, Detail: fmt.Sprintf(format, args...)}
}

// ParseLine parses one record line (with or without its trailing newline)
// and checks it against itself: the JSON is an object of schema version 1,
// the hash and mac members come last in the documented shape, and the hash
// equals the SHA-256 of the canonical body. Chain links (seq, prev_hash)
// and the MAC need the neighbours and the key; Verify checks them.
func ParseLine(line []byte) (*Record, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	if len(line) > MaxLineBytes {
		return nil, malformed("line longer than %d bytes", MaxLineBytes)
	}
	body, hash, err := splitLine(line)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, malformed("json: %v", err)
	}
	if r.V != SchemaVersion {
		return nil, &LineError{Err: ErrVersion, Detail: fmt.Sprintf("v=%d", r.V)}
	}
	if r.Hash != hash {
		return nil, malformed("duplicate hash member")
	}
	if r.Type == "" || r.Seq == 0 || len(r.PrevHash) != 64 {
		return nil, malformed("event, seq and prev_hash are required")
	}
	if got := hashBody(body); got != hash {
		return nil, &LineError{Err: ErrHashMismatch, Detail: "content edited after it was written"}
	}
	return &r, nil
}

// splitLine returns the hashed body without its closing brace (the line up
// to the hash member) and the hex hash, checking the suffix's exact shape
// `,"hash":"<64 hex>","mac":"<mac>"}`.
func splitLine(line []byte) (body []byte, hash string, err error) {
	i := bytes.LastIndex(line, hashMarker)
	if i < 0 || len(line) == 0 || line[0] != '{' {
		return nil, "", malformed("no hash member")
	}
	rest := line[i+len(hashMarker):]
	const macKey = `","mac":"`
	if len(rest) < 64+len(macKey)+2 {
		return nil, "", malformed("truncated hash/mac")
	}
	h := rest[:64]
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return nil, "", malformed("hash is not lowercase hex")
		}
	}
	rest = rest[64:]
	if !bytes.HasPrefix(rest, []byte(macKey)) || !bytes.HasSuffix(rest, []byte(`"}`)) {
		return nil, "", malformed("hash and mac must be the last members")
	}
	mac := rest[len(macKey) : len(rest)-2]
	if len(mac) == 0 || bytes.ContainsAny(mac, "\"\\") {
		return nil, "", malformed("bad mac")
	}
	return line[:i], string(h), nil
}

// parseChainFields fills the fields Verify needs (v, seq, event, prev_hash,
// hash, mac) from a line written in canonical form, checking its hash but
// without a full JSON decode: verifying is then dominated by hashing, not
// by reflection. Anything unusual (not canonical-looking, escapes in the
// event name, an audit.repair record whose details matter) falls back to
// ParseLine. This is sound because the MAC, checked for every record,
// covers every byte of the body: a line that was not written by the key
// holder fails its MAC whatever this shortcut extracted from it.
func parseChainFields(line []byte, dst *Record) error {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	if len(line) > MaxLineBytes || !bytes.HasPrefix(line, []byte(`{"actor":{`)) {
		return parseInto(line, dst)
	}
	body, hash, err := splitLine(line)
	if err != nil {
		return err
	}
	typ, ok1 := lastString(body, `,"event":"`)
	prev, ok2 := lastString(body, `,"prev_hash":"`)
	seq, ok3 := lastUint(body, `,"seq":`)
	v1 := bytes.Contains(body, []byte(`,"v":1,"`)) || bytes.HasSuffix(body, []byte(`,"v":1`))
	if !ok1 || !ok2 || !ok3 || !v1 || len(prev) != 64 || seq == 0 || typ == "" || rotator.EventType(typ) == EventRepair || rotator.EventType(typ) == EventCheckpoint {
		return parseInto(line, dst)
	}
	if hashBody(body) != hash {
		return &LineError{Err: ErrHashMismatch, Detail: "content edited after it was written"}
	}
	macStart := len(body) + len(hashMarker) + 64 + len(`","mac":"`)
	*dst = Record{V: SchemaVersion, Seq: seq, PrevHash: prev, Hash: hash, MAC: string(line[macStart : len(line)-2])}
	dst.Type = rotator.EventType(typ)
	return nil
}

func parseInto(line []byte, dst *Record) error {
	r, err := ParseLine(line)
	if err != nil {
		return err
	}
	*dst = *r
	return nil
}

// lastIndex is bytes.LastIndex(body, key), found with forward searches:
// bytes.Index is vectorised, while LastIndex hashes byte by byte (Rabin-
// Karp), which made it 40% of `audit verify`. A key occurs once or twice
// in a line, so the forward loop is one pass over the body.
func lastIndex(body []byte, key string) int {
	last, from := -1, 0
	for {
		i := bytes.Index(body[from:], []byte(key))
		if i < 0 {
			return last
		}
		last = from + i
		from = last + 1
	}
}

// lastString returns the plain (escape-free) string value after the last
// occurrence of key, which must include the opening quote of the value.
func lastString(body []byte, key string) (string, bool) {
	i := lastIndex(body, key)
	if i < 0 {
		return "", false
	}
	rest := body[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return "", false
	}
	return string(rest[:j]), true
}

// lastUint returns the unsigned integer after the last occurrence of key.
func lastUint(body []byte, key string) (uint64, bool) {
	i := lastIndex(body, key)
	if i < 0 {
		return 0, false
	}
	rest := body[i+len(key):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j == 0 || j > 19 || (j < len(rest) && rest[j] != ',') {
		return 0, false
	}
	n, err := strconv.ParseUint(string(rest[:j]), 10, 64)
	return n, err == nil
}
