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
	"time"
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
	KindTruncated  = "truncated"   // the log ends before its anchor / the Vault head
	KindCheckpoint = "checkpoint"  // a checkpoint or the anchor is forged or disagrees with the log
	KindTorn       = "torn"        // the last line is incomplete (crash during an append)
	KindReplaced   = "replaced"    // the log holds another chain than the anchored one
	KindDeleted    = "deleted"     // no log (or an empty one) where Vault anchors a chain
	KindUnsigned   = "unsigned"    // records after the last signature, with no MAC check to vouch for them
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
	// MAC checks every record's MAC (transit/verify for auditors, who
	// cannot compute one). Without it only the hash chain and the
	// signatures are checked; VerifyResult.MACChecked says which was done.
	MAC MACer
	// Sig checks the signatures of audit.checkpoint records and of the
	// anchor: PublicKeys (ed25519, offline) or MACSigner (KV lab mode).
	// A valid signature over (chain, seq, hash) vouches for every record up
	// to seq. Without it signatures are not checked.
	Sig SigVerifier
	// Anchor is the chain head Vault says the log reached (ReadAnchor), or
	// one exported earlier. The log must hold its chain and reach it.
	Anchor *Anchor
	// AllowUnsignedTail accepts records after the last valid signature
	// when no MAC is checked (offline verification of a live log). Without
	// it such a tail is KindUnsigned: nothing vouches for it.
	AllowUnsignedTail bool
	// BatchSize is how many MACs are checked per call (default 256).
	BatchSize int
}

// AnchorReset is an audit.repair record that moved the anchor.
type AnchorReset struct {
	RepairSeq uint64
	Problem   string // AnchorDeleted, AnchorTruncated or AnchorReplaced
	Found     string
	Old       Anchor // the anchor before the repair (its signature is not re-checked)
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
	// SigMode is the signing scheme checked ("" when Sig was not set).
	SigMode string
	// Signatures counts valid audit.checkpoint signatures; SignedSeq is
	// the last seq a valid signature (or the anchor) vouches for.
	Signatures int
	SignedSeq  uint64
	// Unsigned counts records after SignedSeq (audit.checkpoint records
	// themselves not counted).
	Unsigned uint64
	Anchor   *Anchor // the anchor the log was checked against
	Repairs  []Repair
	Resets   []AnchorReset
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
	expected uint64     // the seq seqErr expected
	head     *vaultHead // Vault head to meet (unsigned)
	headSeen bool       // the record at head.seq matched
	anchSeen bool       // the record at opts.Anchor.Seq matched
	// afterAnchor counts records after the anchored seq (checkpoint
	// records not counted), for when the anchor is the latest signature.
	afterAnchor uint64
	scratch     Record // reused for every line
}

func newVerifier(opts VerifyOptions, res *VerifyResult) *verifier {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	res.MACChecked = opts.MAC != nil
	if opts.Sig != nil {
		res.SigMode = opts.Sig.Mode()
	}
	res.Anchor = opts.Anchor
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
			return v.fail(ctx, tamper(KindReordered, p, r.Seq, "seq %d after seq %d: records out of order, duplicated, or a second writer forked the chain", r.Seq, v.next-1))
		}
		v.seqErr = tamper(KindGap, p, r.Seq, "expected seq %d, found seq %d: %d record(s) missing", v.next, r.Seq, r.Seq-v.next)
		v.expected = v.next
		return nil
	}
	if r.PrevHash != v.prev {
		return v.fail(ctx, tamper(KindBrokenLink, p, r.Seq, "prev_hash does not match the hash of seq %d (records replaced, or a second writer forked the chain)", r.Seq-1))
	}
	if r.Seq == 1 {
		v.res.Chain = ChainID(r.Hash)
		if a := v.opts.Anchor; a != nil && a.Chain != v.res.Chain {
			return v.fail(ctx, v.replaced())
		}
	}
	if a := v.opts.Anchor; a != nil && r.Seq == a.Seq {
		if r.Hash != a.Hash {
			return v.fail(ctx, tamper(KindReplaced, p, r.Seq, "record differs from the anchored head of seq %d (%s): the log was rewritten from here", a.Seq, a.Time.UTC().Format(time.RFC3339)))
		}
		v.anchSeen = true
	}
	if v.head != nil && r.Seq == v.head.seq {
		if r.Hash != v.head.hash {
			return v.fail(ctx, tamper(KindCheckpoint, p, r.Seq, "record differs from the Vault chain head"))
		}
		v.headSeen = true
	}
	switch r.Type {
	case EventCheckpoint:
		if err := v.checkpoint(ctx, r, p); err != nil {
			return v.fail(ctx, err.(*TamperError))
		}
	case EventRepair:
		if r.Details["repair"] == RepairAnchorReset {
			v.res.Resets = append(v.res.Resets, anchorReset(r))
		}
		v.countUnsigned(r.Seq)
	default:
		v.countUnsigned(r.Seq)
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
	if a := v.opts.Anchor; a != nil {
		if v.res.Chain == "" {
			return tamper(KindDeleted, end, 0, "the log holds no records, but Vault anchor %q says chain %s reached seq %d at %s: the log was deleted or emptied",
				a.ID, a.Chain, a.Seq, a.Time.UTC().Format(time.RFC3339))
		}
		if !v.anchSeen {
			return tamper(KindTruncated, end, v.res.LastSeq, "log ends at seq %d but Vault anchor %q says seq %d (hash %.16s…) was written by %s: the tail was cut off",
				v.res.LastSeq, a.ID, a.Seq, a.Hash, a.Time.UTC().Format(time.RFC3339))
		}
		if v.opts.Sig != nil {
			ok, err := v.opts.Sig.VerifyHead(ctx, a.Message(), a.Sig)
			if err != nil {
				return fmt.Errorf("audit: verify anchor signature: %w", err)
			}
			if !ok {
				return tamper(KindCheckpoint, end, a.Seq, "the anchor's %s signature is invalid (forged or altered anchor)", v.opts.Sig.Mode())
			}
			if a.Seq > v.res.SignedSeq {
				v.res.SignedSeq, v.res.Unsigned = a.Seq, v.afterAnchor
			}
		}
	}
	if h := v.head; h != nil && h.seq > 0 && !v.headSeen {
		return tamper(KindTruncated, end, v.res.LastSeq, "chain ends at seq %d but the Vault head is at seq %d", v.res.LastSeq, h.seq)
	}
	if v.opts.Sig != nil && v.opts.MAC == nil && v.res.Unsigned > 0 && !v.opts.AllowUnsignedTail {
		return tamper(KindUnsigned, end, v.res.SignedSeq+1, "%d record(s) after seq %d carry no signature and no MAC was checked: nothing vouches for them (verify online, or pass --allow-unsigned-tail for a log still being written)",
			v.res.Unsigned, v.res.SignedSeq)
	}
	return nil
}

// checkpoint checks an audit.checkpoint record: it must state the record
// just before it, and (with opts.Sig) carry a valid signature.
func (v *verifier) checkpoint(ctx context.Context, r *Record, p position) error {
	d := r.Details
	seq, err := strconv.ParseUint(d["seq"], 10, 64)
	t, terr := time.Parse(time.RFC3339Nano, d["time"])
	if err != nil || terr != nil || seq != r.Seq-1 || d["hash"] != v.prev || d["chain"] != v.res.Chain {
		return tamper(KindCheckpoint, p, r.Seq, "checkpoint does not state the record before it (chain %s seq %d)", v.res.Chain, r.Seq-1)
	}
	if v.opts.Sig == nil {
		return nil
	}
	msg := AnchorMessage(d["anchor_id"], d["chain"], seq, d["hash"], t)
	ok, err := v.opts.Sig.VerifyHead(ctx, msg, d["sig"])
	if err != nil {
		return fmt.Errorf("audit: verify checkpoint signature: %w", err)
	}
	if !ok {
		why := "forged, or signed with another key"
		if m := d["mode"]; m != v.opts.Sig.Mode() {
			why = fmt.Sprintf("it was made in mode %q, checked as %q", m, v.opts.Sig.Mode())
		}
		return tamper(KindForged, p, r.Seq, "checkpoint signature invalid (%s): the records before it are not the ones the daemon signed", why)
	}
	v.res.Signatures++
	v.res.SignedSeq, v.res.Unsigned = seq, 0
	return nil
}

func (v *verifier) countUnsigned(seq uint64) {
	v.res.Unsigned++
	if a := v.opts.Anchor; a != nil && seq > a.Seq {
		v.afterAnchor++
	}
}

// replaced is the error for a log whose chain is not the anchored one.
func (v *verifier) replaced() *TamperError {
	a := v.opts.Anchor
	return tamper(KindReplaced, position{file: "(start of log)"}, 1, "the log holds chain %s but Vault anchor %q is chain %s (seq %d at %s): the log was replaced, or deleted and restarted",
		v.res.Chain, a.ID, a.Chain, a.Seq, a.Time.UTC().Format(time.RFC3339))
}

func anchorReset(r *Record) AnchorReset {
	d := r.Details
	seq, _ := strconv.ParseUint(d["anchor_seq"], 10, 64)
	t, _ := time.Parse(time.RFC3339Nano, d["anchor_time"])
	return AnchorReset{RepairSeq: r.Seq, Problem: d["problem"], Found: d["found"],
		Old: Anchor{ID: d["anchor_id"], Chain: d["anchor_chain"], Seq: seq, Hash: d["anchor_hash"], Time: t, Sig: d["anchor_signed"]}}
}

// VerifyFile verifies the log at path (with its rotated files) in one
// streaming pass: every record's hash, the seq and prev_hash links, every
// MAC (opts.MAC), and the tail against the signed checkpoint. The first
// problem is returned as a *TamperError (errors.Is ErrTampered); other
// errors mean it could not tell (I/O, Vault).
func VerifyFile(ctx context.Context, logPath string, opts VerifyOptions) (*VerifyResult, error) {
	snap, err := snapshot(logPath)
	if err != nil {
		return nil, err
	}
	defer snap.close()
	res := &VerifyResult{}
	for _, f := range snap {
		res.Files = append(res.Files, f.name)
	}
	v := newVerifier(opts, res)
	if len(snap) == 0 {
		if opts.Anchor != nil {
			return res, v.finish(ctx) // reports KindDeleted
		}
		return nil, fmt.Errorf("audit: no log at %s: %w", logPath, os.ErrNotExist)
	}
	for _, f := range snap {
		err := eachLineOf(f.name, io.NewSectionReader(f.f, 0, f.size), func(line []byte, p position) error { return v.feed(ctx, line, p) })
		if err != nil {
			return res, err
		}
	}
	return res, v.finish(ctx)
}

// snapFile is one file of the log, opened, with the size it had when the
// snapshot was taken.
type snapFile struct {
	name string
	f    *os.File
	size int64
}

type snapshotFiles []snapFile

func (s snapshotFiles) close() {
	for _, f := range s {
		f.f.Close()
	}
}

// snapshot opens the log's files and notes their sizes while holding the
// writers' lock (when this process may take it), so that verifying a log
// that the daemon is writing never sees half an append, and a size
// rotation during the read cannot make it skip or repeat a file. The lock
// is held only while the files are opened, not while they are read.
func snapshot(logPath string) (snapshotFiles, error) {
	if lk, err := openLockReadOnly(logPath); err == nil {
		if lk.lock() == nil {
			defer lk.unlock()
		}
		defer lk.close()
	}
	files, err := Files(logPath)
	if err != nil {
		return nil, err
	}
	var out snapshotFiles
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			out.close()
			return nil, fmt.Errorf("audit: open %s: %w", name, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			out.close()
			return nil, fmt.Errorf("audit: stat %s: %w", name, err)
		}
		out = append(out, snapFile{name: name, f: f, size: st.Size()})
	}
	return out, nil
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
	return eachLineOf(file, f, fn)
}

// eachLineOf is eachLine over r, which holds the content of file.
func eachLineOf(file string, r io.Reader, fn func(line []byte, p position) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
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
func VerifyVault(ctx context.Context, c Vault, mount, sinkPath string, opts VerifyOptions) (*VerifyResult, error) {
	h, err := readVaultHead(ctx, c, mount, sinkPath)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Files: []string{"vault:" + path.Join(mount, sinkPath)}}
	opts.Anchor, opts.Sig = nil, nil
	v := newVerifier(opts, res)
	v.head = &h
	for seq := uint64(1); ; seq++ {
		line, err := readVaultRecord(ctx, c, mount, sinkPath, seq)
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
