package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"

	vaultapi "github.com/hashicorp/vault/api"
)

// ErrTampered is matched (errors.Is) by every *TamperError.
var ErrTampered = errors.New("audit: tampering detected")

// Kinds of problems Verify reports (TamperError.Kind).
const (
	KindEdited     = "edited"      // a record's content does not match its hash, or is not a record
	KindGap        = "gap"         // a sequence number is missing (a deleted line)
	KindReordered  = "reordered"   // records out of order (swapped lines)
	KindBrokenLink = "broken-link" // prev_hash differs from the previous record's hash
	KindForged     = "forged"      // the MAC is invalid: written without the key
	KindTruncated  = "truncated"   // the log ends before a signed checkpoint / the Vault head
	KindCheckpoint = "checkpoint"  // a checkpoint is forged or disagrees with the log
	KindTorn       = "torn"        // the last line is incomplete (crash during an append)
)

// TamperError is the first problem Verify found.
type TamperError struct {
	Kind   string
	File   string // file (or Vault path) holding the record
	Line   int    // 1-based line number in File (0 when not applicable)
	Seq    uint64 // sequence number of the bad record, when known
	Reason string
}

func (e *TamperError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	seq := ""
	if e.Seq > 0 {
		seq = fmt.Sprintf(" seq %d", e.Seq)
	}
	return fmt.Sprintf("audit: %s at %s%s: %s", e.Kind, loc, seq, e.Reason)
}

// Is matches ErrTampered, and ErrTornTail for a torn last line.
func (e *TamperError) Is(target error) bool {
	return target == ErrTampered || (target == ErrTornTail && e.Kind == KindTorn)
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// MAC checks every record's MAC (and the checkpoint's). Without it only
	// the hash chain is checked, which does not detect a forger who
	// recomputes the hashes; VerifyResult.MACChecked says which was done.
	MAC MACer
	// Checkpoint returns the signed checkpoint for a chain id (nil when
	// none); called once the first record names the chain. Optional.
	Checkpoint func(ctx context.Context, chain string) (*Checkpoint, error)
	// BatchSize is how many MACs are checked per call (default 256).
	BatchSize int
}

// Repair is a torn line sealed by an audit.repair record.
type Repair struct {
	File      string
	Line      int
	Offset    int64
	RepairSeq uint64
}

// VerifyResult summarises a successful verification.
type VerifyResult struct {
	Files      []string
	Records    uint64
	LastSeq    uint64
	Head       string // hash of the last record
	Chain      string // chain id
	MACChecked bool
	Checkpoint *Checkpoint // the checkpoint the log was checked against
	Repairs    []Repair
}

type position struct {
	file       string
	line       int
	offset     int64
	terminated bool // the line ended with a newline
}

type badLine struct {
	pos  position
	sha  string
	size int
	err  error
}

type pendingMAC struct {
	hash, mac string
	seq       uint64
	pos       position
}

// verifier checks a stream of lines. Memory is bounded by one MAC batch.
type verifier struct {
	opts     VerifyOptions
	res      *VerifyResult
	prev     string
	next     uint64
	pending  []pendingMAC
	bad      *badLine
	seqErr   *TamperError
	expected uint64      // the seq seqErr expected
	cp       *Checkpoint // signed checkpoint to meet
	head     *vaultHead  // Vault head to meet (unsigned)
	cpSeen   bool        // the record at cp.Seq matched
	headSeen bool        // the record at head.seq matched
	scratch  Record      // reused for every line
}

func newVerifier(opts VerifyOptions, res *VerifyResult) *verifier {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	res.MACChecked = opts.MAC != nil
	return &verifier{opts: opts, res: res, prev: ZeroHash, next: 1}
}

func tamper(kind string, p position, seq uint64, format string, args ...any) *TamperError {
	return &TamperError{Kind: kind, File: p.file, Line: p.line, Seq: seq, Reason: fmt.Sprintf(format, args...)}
}

func (v *verifier) feed(ctx context.Context, line []byte, p position) error {
	r := &v.scratch
	perr := parseChainFields(line, r)
	if perr == nil && !p.terminated {
		perr = errors.New("no newline")
	}
	if v.seqErr != nil {
		// One record of look-ahead tells a swap from a deletion.
		if perr == nil && r.Seq == v.expected {
			v.seqErr.Kind = KindReordered
			v.seqErr.Reason = fmt.Sprintf("seq %d comes before seq %d: records out of order", v.seqErr.Seq, r.Seq)
		}
		return v.fail(ctx, v.seqErr)
	}
	if perr != nil {
		if v.bad != nil {
			return v.fail(ctx, v.badError())
		}
		v.bad = &badLine{pos: p, sha: sha256Hex(line), size: len(line), err: perr}
		return nil
	}
	if v.bad != nil {
		if !v.sealsBad(r) {
			return v.fail(ctx, v.badError())
		}
		v.res.Repairs = append(v.res.Repairs, Repair{File: v.bad.pos.file, Line: v.bad.pos.line, Offset: v.bad.pos.offset, RepairSeq: r.Seq})
		v.bad = nil
	}
	if r.Seq != v.next {
		if r.Seq < v.next {
			return v.fail(ctx, tamper(KindReordered, p, r.Seq, "seq %d after seq %d: records out of order or duplicated", r.Seq, v.next-1))
		}
		v.seqErr = tamper(KindGap, p, r.Seq, "expected seq %d, found seq %d: %d record(s) missing", v.next, r.Seq, r.Seq-v.next)
		v.expected = v.next
		return nil
	}
	if r.PrevHash != v.prev {
		return v.fail(ctx, tamper(KindBrokenLink, p, r.Seq, "prev_hash does not match the hash of seq %d", r.Seq-1))
	}
	if r.Seq == 1 {
		v.res.Chain = ChainID(r.Hash)
		if v.opts.Checkpoint != nil {
			cp, err := v.opts.Checkpoint(ctx, v.res.Chain)
			if err != nil {
				return err
			}
			v.cp = cp
		}
	}
	if v.cp != nil && r.Seq == v.cp.Seq {
		if r.Hash != v.cp.Hash {
			return v.fail(ctx, tamper(KindCheckpoint, p, r.Seq, "record differs from the signed checkpoint of seq %d", v.cp.Seq))
		}
		v.cpSeen = true
	}
	if v.head != nil && r.Seq == v.head.seq {
		if r.Hash != v.head.hash {
			return v.fail(ctx, tamper(KindCheckpoint, p, r.Seq, "record differs from the Vault chain head"))
		}
		v.headSeen = true
	}
	v.prev, v.next = r.Hash, r.Seq+1
	v.res.Records++
	v.res.LastSeq, v.res.Head = r.Seq, r.Hash
	if v.opts.MAC != nil {
		v.pending = append(v.pending, pendingMAC{hash: r.Hash, mac: r.MAC, seq: r.Seq, pos: p})
		if len(v.pending) >= v.opts.BatchSize {
			return v.flush(ctx)
		}
	}
	return nil
}

// sealsBad reports whether r is the audit.repair record for v.bad.
func (v *verifier) sealsBad(r *Record) bool {
	d := r.Details
	return r.Type == EventRepair && v.bad.pos.terminated &&
		d["torn_offset"] == strconv.FormatInt(v.bad.pos.offset, 10) &&
		d["torn_sha256"] == v.bad.sha && d["torn_bytes"] == strconv.Itoa(v.bad.size)
}

func (v *verifier) badError() *TamperError {
	b := v.bad
	if !b.pos.terminated {
		return tamper(KindTorn, b.pos, 0, "last line is incomplete (%d bytes without a newline: a crash during an append); run `ecarotator audit repair`", b.size)
	}
	return tamper(KindEdited, b.pos, 0, "not a valid record: %v", b.err)
}

// fail reports the first problem in file order: a MAC failure in a record
// before te wins over te.
func (v *verifier) fail(ctx context.Context, te *TamperError) error {
	if err := v.flush(ctx); err != nil {
		return err
	}
	return te
}

func (v *verifier) flush(ctx context.Context) error {
	if len(v.pending) == 0 || v.opts.MAC == nil {
		v.pending = v.pending[:0]
		return nil
	}
	msgs := make([]string, len(v.pending))
	macs := make([]string, len(v.pending))
	for i, p := range v.pending {
		msgs[i], macs[i] = p.hash, p.mac
	}
	ok, err := v.opts.MAC.Verify(ctx, msgs, macs)
	if err != nil {
		return fmt.Errorf("audit: verify MACs: %w", err)
	}
	for i, good := range ok {
		if !good {
			p := v.pending[i]
			v.pending = v.pending[:0]
			return tamper(KindForged, p.pos, p.seq, "MAC invalid: the record was not written with the audit MAC key")
		}
	}
	v.pending = v.pending[:0]
	return nil
}

func (v *verifier) finish(ctx context.Context) error {
	if v.seqErr != nil {
		return v.fail(ctx, v.seqErr)
	}
	if v.bad != nil {
		return v.fail(ctx, v.badError())
	}
	if err := v.flush(ctx); err != nil {
		return err
	}
	end := position{file: "(end of log)"}
	if cp := v.cp; cp != nil {
		v.res.Checkpoint = cp
		if v.opts.MAC != nil {
			ok, err := v.opts.MAC.Verify(ctx, []string{CheckpointMessage(cp.Chain, cp.Seq, cp.Hash)}, []string{cp.MAC})
			if err != nil {
				return fmt.Errorf("audit: verify checkpoint MAC: %w", err)
			}
			if !ok[0] {
				return tamper(KindCheckpoint, end, cp.Seq, "the checkpoint's MAC is invalid (forged checkpoint)")
			}
		}
		if !v.cpSeen {
			return tamper(KindTruncated, end, v.res.LastSeq, "log ends at seq %d but the signed checkpoint of %s says seq %d (hash %.16s…) was written: the tail was cut off",
				v.res.LastSeq, cp.Time.Format("2006-01-02T15:04:05Z07:00"), cp.Seq, cp.Hash)
		}
	}
	if h := v.head; h != nil && h.seq > 0 && !v.headSeen {
		return tamper(KindTruncated, end, v.res.LastSeq, "chain ends at seq %d but the Vault head is at seq %d", v.res.LastSeq, h.seq)
	}
	return nil
}

// VerifyFile verifies the log at path (with its rotated files) in one
// streaming pass: every record's hash, the seq and prev_hash links, every
// MAC (opts.MAC), and the tail against the signed checkpoint. The first
// problem is returned as a *TamperError (errors.Is ErrTampered); other
// errors mean it could not tell (I/O, Vault).
func VerifyFile(ctx context.Context, logPath string, opts VerifyOptions) (*VerifyResult, error) {
	files, err := Files(logPath)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Files: files}
	v := newVerifier(opts, res)
	if len(files) == 0 {
		return nil, fmt.Errorf("audit: no log at %s: %w", logPath, os.ErrNotExist)
	}
	for _, f := range files {
		err := eachLine(f, func(line []byte, p position) error { return v.feed(ctx, line, p) })
		if err != nil {
			return res, err
		}
	}
	return res, v.finish(ctx)
}

// eachLine calls fn for every line of file (without its newline). Memory
// stays bounded by MaxLineBytes: longer lines are passed truncated (they
// fail parsing).
func eachLine(file string, fn func(line []byte, p position) error) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", file, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	var long []byte
	var off int64
	lineNo := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long) <= MaxLineBytes {
				long = append(long, chunk...)
			}
			off += int64(len(chunk))
			continue
		}
		line := chunk
		start := off
		off += int64(len(chunk))
		if long != nil {
			start -= int64(len(long))
			if len(long) <= MaxLineBytes {
				long = append(long, chunk...)
			}
			line, long = long, nil
		}
		if len(line) > 0 {
			lineNo++
			term := line[len(line)-1] == '\n'
			if term {
				line = line[:len(line)-1]
			}
			if ferr := fn(line, position{file: file, line: lineNo, offset: start, terminated: term}); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: read %s: %w", file, err)
		}
	}
}

// VerifyVault verifies the Vault sink's chain under sinkPath at mount:
// records/1, records/2, … up to the first missing one, which must be past
// the head. Each record costs one Vault read.
func VerifyVault(ctx context.Context, c *vaultapi.Client, mount, sinkPath string, opts VerifyOptions) (*VerifyResult, error) {
	kv := c.KVv2(mount)
	h, err := readVaultHead(ctx, kv, sinkPath)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Files: []string{"vault:" + path.Join(mount, sinkPath)}}
	opts.Checkpoint = nil
	v := newVerifier(opts, res)
	v.head = &h
	for seq := uint64(1); ; seq++ {
		line, err := readVaultRecord(ctx, kv, sinkPath, seq)
		if err != nil {
			return res, err
		}
		if line == nil {
			break
		}
		p := position{file: "vault:" + path.Join(mount, sinkPath, "records", strconv.FormatUint(seq, 10)), terminated: true}
		if err := v.feed(ctx, line, p); err != nil {
			return res, err
		}
	}
	return res, v.finish(ctx)
}

// ScanLines counts the lines of the log at path without parsing them: the
// baseline the verify benchmark compares against.
func ScanLines(logPath string) (int, error) {
	files, err := Files(logPath)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		if err := eachLine(f, func([]byte, position) error { n++; return nil }); err != nil {
			return n, err
		}
	}
	return n, nil
}
