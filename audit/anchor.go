package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"regexp"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// The anchor is the authority on how far a file chain reached. The file
// alone cannot prove that its tail was not cut off, or that it was not
// deleted and restarted: whoever can write the file can do both. So the
// writer keeps a signed statement of its chain head in Vault, at
// <checkpoint_path>/anchors/<anchor id>, advanced with check-and-set at the
// end of every rotation, retirement, approval and operator action, every
// CheckpointEvery records and at Close. The same statement is appended to
// the file as an audit.checkpoint record, so an archived file can be
// verified offline with the public key alone.
//
// New refuses to open a file that is missing, shorter than the anchor, or
// holds another chain (an *AnchorError naming `ecarotator audit repair`);
// Verify fails on the same conditions.

// EventCheckpoint is the in-file copy of a signed anchor statement. Its
// details carry anchor_id, chain, seq, hash, time, mode and sig; the
// statement covers the record just before it.
const EventCheckpoint rotator.EventType = "audit.checkpoint"

// Anchor is a signed statement of a file chain's head.
type Anchor struct {
	ID    string    `json:"id"`    // anchor id: which writer's file this is
	Chain string    `json:"chain"` // chain id: the first 16 hex digits of the seq-1 hash
	Seq   uint64    `json:"seq"`   // last sequence number covered
	Hash  string    `json:"hash"`  // hash of the record at Seq
	Time  time.Time `json:"time"`  // when it was signed
	Mode  string    `json:"mode"`  // ModeEd25519 or ModeHMAC
	Sig   string    `json:"sig"`   // signature over AnchorMessage
	File  string    `json:"file,omitempty"`
}

// AnchorMessage is what an anchor's signature covers.
func AnchorMessage(id, chain string, seq uint64, hash string, t time.Time) string {
	return fmt.Sprintf("ecarotator audit anchor v1 id=%s chain=%s seq=%d hash=%s time=%s",
		id, chain, seq, hash, t.UTC().Format(time.RFC3339Nano))
}

// Message returns the signed message of a.
func (a *Anchor) Message() string { return AnchorMessage(a.ID, a.Chain, a.Seq, a.Hash, a.Time) }

// anchorIDPattern keeps anchor ids safe as one Vault path segment.
var anchorIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidAnchorID reports whether id can name an anchor.
func ValidAnchorID(id string) bool { return anchorIDPattern.MatchString(id) }

// DefaultAnchorID names the anchor of the log at file when the config
// sets none: "file-" and 12 hex digits of the SHA-256 of its absolute
// path. The daemon and the CLI commands on one host share it; replicas on
// other hosts with the same path must set audit.anchor_id (the second one
// refuses to start, naming the setting, rather than fight over it).
func DefaultAnchorID(file string) string {
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	s := sha256.Sum256([]byte(file))
	return "file-" + hex.EncodeToString(s[:6])
}

// anchorPath is the KV path of anchor id under base.
func anchorPath(base, id string) string { return path.Join(base, "anchors", id) }

// ReadAnchor reads anchor id under checkpointPath at mount (nil, 0, nil
// when none was written) and the KV version it was read at.
func ReadAnchor(ctx context.Context, c Vault, mount, checkpointPath, id string) (*Anchor, int, error) {
	p := anchorPath(checkpointPath, id)
	data, v, err := c.ReadDoc(ctx, kvPath(mount, p))
	if isNotFound(err) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("audit: read anchor %s/%s: %w", mount, p, err)
	}
	seq, err := jsonUint(data["seq"])
	if err != nil {
		return nil, 0, fmt.Errorf("audit: anchor %s: seq: %w", p, err)
	}
	a := &Anchor{ID: id, Seq: seq}
	a.Chain, _ = data["chain"].(string)
	a.Hash, _ = data["hash"].(string)
	a.Sig, _ = data["sig"].(string)
	a.Mode, _ = data["mode"].(string)
	a.File, _ = data["file"].(string)
	ts, _ := data["time"].(string)
	if a.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return nil, 0, fmt.Errorf("audit: anchor %s: time: %w", p, err)
	}
	return a, v, nil
}

// ErrAnchorConflict means the anchor in Vault names another chain, or a
// later head of this one than the writer knows: another writer (a replica
// with the same anchor id, or a replaced file) is involved.
var ErrAnchorConflict = errors.New("audit: anchor conflict")

// writeAnchor advances anchor a.ID to a with check-and-set. It never moves
// an anchor backwards or onto another chain unless reset (an operator's
// audited repair) is set.
func writeAnchor(ctx context.Context, c Vault, mount, checkpointPath string, a Anchor, reset bool) error {
	p := anchorPath(checkpointPath, a.ID)
	for try := 0; try < 5; try++ {
		cur, ver, err := ReadAnchor(ctx, c, mount, checkpointPath, a.ID)
		if err != nil {
			return err
		}
		if cur != nil && !reset {
			if cur.Chain != a.Chain {
				return fmt.Errorf("%w: %s/%s anchors chain %s, this log is chain %s (another writer uses anchor id %q? set audit.anchor_id per writer)",
					ErrAnchorConflict, mount, p, cur.Chain, a.Chain, a.ID)
			}
			if cur.Seq > a.Seq {
				return fmt.Errorf("%w: %s/%s is at seq %d, past this writer's seq %d", ErrAnchorConflict, mount, p, cur.Seq, a.Seq)
			}
			if cur.Seq == a.Seq {
				return nil
			}
		}
		_, err = c.WriteDoc(ctx, kvPath(mount, p), map[string]any{
			"chain": a.Chain, "seq": a.Seq, "hash": a.Hash, "time": a.Time.UTC().Format(time.RFC3339Nano),
			"mode": a.Mode, "sig": a.Sig, "file": a.File,
		}, ver)
		if err == nil {
			return nil
		}
		if !isCASConflict(err) {
			return fmt.Errorf("audit: write anchor %s/%s: %w", mount, p, err)
		}
		reset = false // someone moved it meanwhile: re-check before overwriting
	}
	return fmt.Errorf("%w: %s/%s: too many concurrent updates", ErrAnchorConflict, mount, p)
}

// WriteAnchorJSON writes a as JSON (for `ecarotator audit anchor`).
func WriteAnchorJSON(w io.Writer, a *Anchor) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(a)
}

// ParseAnchorJSON reads an anchor written by WriteAnchorJSON.
func ParseAnchorJSON(b []byte) (*Anchor, error) {
	if len(b) > maxPublicKeyFile {
		return nil, fmt.Errorf("audit: anchor file larger than %d bytes", maxPublicKeyFile)
	}
	var a Anchor
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("audit: anchor file: %w", err)
	}
	if !ValidAnchorID(a.ID) || len(a.Chain) != 16 || len(a.Hash) != 64 || a.Seq == 0 || a.Sig == "" {
		return nil, errors.New("audit: anchor file: missing or malformed id, chain, seq, hash or sig")
	}
	return &a, nil
}

// Problems New and Verify report against the anchor.
const (
	AnchorDeleted   = "deleted"   // the file is missing or empty
	AnchorTruncated = "truncated" // the file ends before the anchored seq
	AnchorReplaced  = "replaced"  // the file holds another chain, or diverges at the anchored seq
)

// ErrAnchorMismatch is matched by every *AnchorError.
var ErrAnchorMismatch = errors.New("audit: log does not reach its anchor")

// AnchorError is why New refused a log: it does not reach the head that
// Vault says it reached. The daemon fails closed on it.
type AnchorError struct {
	File    string
	Problem string // AnchorDeleted, AnchorTruncated or AnchorReplaced
	Anchor  Anchor
	Found   string // what the file holds instead
}

func (e *AnchorError) Error() string {
	return fmt.Sprintf("audit: %s is %s: Vault anchor %q says chain %s reached seq %d (hash %.16s…) at %s, but %s. "+
		"Restore the log from a backup, or record the loss and start over with `ecarotator audit repair --operator NAME --reason WHY` (itself audited)",
		e.File, e.Problem, e.Anchor.ID, e.Anchor.Chain, e.Anchor.Seq, e.Anchor.Hash, e.Anchor.Time.UTC().Format(time.RFC3339), e.Found)
}

// Is makes errors.Is(err, ErrAnchorMismatch) true.
func (e *AnchorError) Is(target error) bool { return target == ErrAnchorMismatch }

// checkAnchor compares the file's tail with the anchor (nil: no problem).
func checkAnchor(file string, ti tailInfo, a *Anchor) *AnchorError {
	if a == nil {
		return nil
	}
	e := &AnchorError{File: file, Anchor: *a}
	switch {
	case ti.last == nil:
		e.Problem, e.Found = AnchorDeleted, "the file is missing or empty"
	case ChainID(ti.genesis) != a.Chain:
		e.Problem, e.Found = AnchorReplaced, fmt.Sprintf("the file holds chain %s (seq 1..%d)", orNone(ChainID(ti.genesis)), ti.last.Seq)
	case ti.last.Seq < a.Seq:
		e.Problem, e.Found = AnchorTruncated, fmt.Sprintf("the file ends at seq %d", ti.last.Seq)
	case ti.last.Seq == a.Seq && ti.last.Hash != a.Hash:
		e.Problem, e.Found = AnchorReplaced, fmt.Sprintf("its record at seq %d has another hash", a.Seq)
	default:
		return nil
	}
	return e
}

func orNone(s string) string {
	if s == "" {
		return "(none: no seq 1)"
	}
	return s
}
