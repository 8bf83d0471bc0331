package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"go.uber.org/zap"
)

// Defaults for Options.
const (
	DefaultMaxFileBytes    = 100 << 20
	DefaultCheckpointEvery = 100
	DefaultKVMount         = "secret"
	closeTimeout           = 10 * time.Second
)

// Sentinel errors.
var (
	// ErrNotDurable wraps every Record failure: the event was not made
	// durable in every configured sink. The engine fails closed on it.
	ErrNotDurable = errors.New("audit: event not durable")
	// ErrClosed is returned by Record after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrInvalidEvent rejects an event without a type.
	ErrInvalidEvent = errors.New("audit: invalid event")
	// ErrBadTail means the last record on disk fails its MAC: the writer
	// will not extend a chain it cannot vouch for.
	ErrBadTail = errors.New("audit: last record fails verification")
)

// Options configure New.
type Options struct {
	// File is the live log file (rotated files sit beside it). Empty
	// disables the file sink.
	File string
	// MaxFileBytes triggers size-based rotation (default 100 MiB).
	MaxFileBytes int64
	// MAC computes the per-record MAC; required. Only the daemon (and the
	// operator commands that write events) hold a MAC key or transit
	// access to one.
	MAC MACer
	// Signer signs the chain-head anchors: TransitSigner (an ed25519 key
	// only the daemon can use; auditors verify with its public key). Nil
	// falls back to MACSigner(MAC), the lab mode that Verify reports as
	// weaker.
	Signer Signer
	// Vault is needed for the Vault sink and for anchors.
	Vault Vault
	// KVMount is the KV v2 mount for SinkPath and CheckpointPath (default
	// "secret").
	KVMount string
	// SinkPath enables the Vault sink (one chain shared by all replicas)
	// when set, e.g. "ecarotator/audit".
	SinkPath string
	// CheckpointPath enables the anchor of the file chain at
	// <CheckpointPath>/anchors/<AnchorID>: New refuses a file that does not
	// reach it, and the head is anchored after every event that ends an
	// action (see anchorEvent), every CheckpointEvery records and at Close.
	CheckpointPath  string
	CheckpointEvery int // default 100
	// AnchorID names this file's anchor (default DefaultAnchorID(File)).
	AnchorID string
	// RepairTornTail lets New seal a torn last line (left by a crash) with
	// an audit.repair record instead of refusing to open. Only an
	// operator's explicit action sets it.
	RepairTornTail bool
	// RepairAnchor lets New open a log that does not reach its anchor
	// (deleted, cut or replaced): it appends an audit.repair record naming
	// the old anchor and what was found, and moves the anchor to this
	// log. Only an operator's explicit action (`ecarotator audit repair`)
	// sets it.
	RepairAnchor bool
	// RepairActor is who authorised the repair (recorded in it).
	RepairActor rotator.Actor
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives warnings; default no-op.
	Logger *zap.Logger

	noSync bool // benchmarks: file appends without fsync, as a baseline
}

func (o *Options) validate() error {
	if o.MAC == nil {
		return errors.New("audit: Options.MAC is required")
	}
	if o.File == "" && o.SinkPath == "" {
		return errors.New("audit: no sink: set Options.File and/or Options.SinkPath")
	}
	if (o.SinkPath != "" || o.CheckpointPath != "") && o.Vault == nil {
		return errors.New("audit: Options.Vault is required for the Vault sink and anchors")
	}
	if o.MaxFileBytes < 0 || o.CheckpointEvery < 0 {
		return errors.New("audit: negative MaxFileBytes or CheckpointEvery")
	}
	if o.MaxFileBytes == 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.KVMount == "" {
		o.KVMount = DefaultKVMount
	}
	if o.AnchorID == "" && o.File != "" {
		o.AnchorID = DefaultAnchorID(o.File)
	}
	if o.CheckpointPath != "" && !ValidAnchorID(o.AnchorID) {
		return fmt.Errorf("audit: anchor id %q: use letters, digits, '.', '_' and '-'", o.AnchorID)
	}
	if o.Signer == nil {
		o.Signer = MACSigner(o.MAC)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return nil
}

// Log is the audit trail writer. It is safe for concurrent use; records are
// appended one at a time in the order Record is called. Several processes
// may write one file (the daemon and operator commands): every append takes
// an exclusive lock on the file and first catches up with records other
// writers appended.
type Log struct {
	mu    sync.Mutex
	opts  Options
	fpKey []byte
	mode  string // signing mode of anchors

	file     *fileSink
	lock     *fileLock
	seq      uint64 // file chain head
	head     string
	chain    string // file chain id (empty until seq 1 exists)
	sinceCP  int    // own records since the last anchor
	anchored bool   // the anchor names this chain
	broken   error  // a failed append left the file in an unknown state

	vault  *vaultSink
	closed bool
	buf    []byte

	// Group commit (Record): the events waiting for the next batch, and
	// whether a goroutine is writing batches.
	qmu      sync.Mutex
	queue    []*pendingRecord
	flushing bool
}

var _ rotator.AuditLog = (*Log)(nil)

// New opens (or creates) the audit trail. It recovers the file chain's
// head from the last line, checks that line's hash and MAC, refuses to
// open a log with a torn last line (an error matching ErrTornTail) unless
// opts.RepairTornTail is set, and refuses a log that does not reach its
// anchor in Vault (an *AnchorError: missing, cut or replaced) unless
// opts.RepairAnchor is set.
func New(ctx context.Context, opts Options) (*Log, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	fpKey, err := opts.MAC.FingerprintKey(ctx)
	if err != nil {
		return nil, err
	}
	l := &Log{opts: opts, fpKey: fpKey, head: ZeroHash, mode: ModeHMAC}
	if m, ok := opts.Signer.(interface{ Mode() string }); ok {
		l.mode = m.Mode()
	}
	if opts.SinkPath != "" {
		l.vault = newVaultSink(opts.Vault, opts.KVMount, opts.SinkPath)
		l.vault.now = opts.Now
	}
	if opts.File == "" {
		return l, nil
	}
	if err := os.MkdirAll(filepath.Dir(opts.File), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create folder for %s: %w", opts.File, err)
	}
	if l.lock, err = openLock(opts.File); err != nil {
		return nil, err
	}
	if err := l.open(ctx); err != nil {
		l.lock.close()
		return nil, err
	}
	return l, nil
}

// open does New's file part under the writers' lock.
func (l *Log) open(ctx context.Context) error {
	opts := l.opts
	if err := l.lock.lock(); err != nil {
		return err
	}
	defer l.lock.unlock()
	ti, err := readTail(opts.File)
	if err != nil {
		return err
	}
	if ti.last != nil {
		ok, err := checkOne(ctx, opts.MAC, ti.last.Hash, ti.last.MAC)
		if err != nil {
			return fmt.Errorf("audit: check last record: %w", err)
		}
		if !ok {
			return fmt.Errorf("%w: seq %d in %s has an invalid MAC (run `ecarotator audit verify`)", ErrBadTail, ti.last.Seq, opts.File)
		}
		l.seq, l.head, l.chain = ti.last.Seq, ti.last.Hash, ChainID(ti.genesis)
	}
	var reset *AnchorError
	if opts.CheckpointPath != "" {
		a, _, err := ReadAnchor(ctx, opts.Vault, opts.KVMount, opts.CheckpointPath, opts.AnchorID)
		if err != nil {
			return err
		}
		if reset = checkAnchor(opts.File, ti, a); reset != nil && !opts.RepairAnchor {
			return reset
		}
		l.anchored = a != nil && reset == nil
	}
	if ti.torn != nil && !opts.RepairTornTail {
		return ti.torn
	}
	l.file, err = openFileSink(opts.File, opts.MaxFileBytes, opts.noSync)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ti.torn != nil {
		if err := l.repairTorn(ctx, ti); err != nil {
			l.file.close()
			return err
		}
	}
	if reset != nil {
		if err := l.repairAnchor(ctx, reset); err != nil {
			l.file.close()
			return err
		}
	}
	return nil
}

func (l *Log) repairActor(why string) rotator.Actor {
	actor := l.opts.RepairActor
	if actor.Kind == "" {
		actor = rotator.Actor{Kind: rotator.ActorOperator, Reason: why}
	}
	return actor
}

// repairTorn seals a torn fragment: it terminates it with a newline (the
// fragment stays in the file as evidence) and appends an audit.repair record
// naming its offset, length and SHA-256, linked to the last good record.
// Verify accepts exactly this shape and reports it. Callers hold l.mu and
// the file lock.
func (l *Log) repairTorn(ctx context.Context, ti tailInfo) error {
	if ti.torn.File != l.opts.File {
		return fmt.Errorf("audit: torn tail in %s, not the live file", ti.torn.File)
	}
	if err := l.file.append([]byte{'\n'}); err != nil {
		return err
	}
	e := rotator.Event{
		Type:    EventRepair,
		Actor:   l.repairActor("repair torn last line"),
		Outcome: rotator.OutcomeOK,
		Details: map[string]string{
			"torn_line":   strconv.Itoa(ti.torn.Line),
			"torn_offset": strconv.FormatInt(ti.torn.Offset, 10),
			"torn_bytes":  strconv.Itoa(ti.torn.Length),
			"torn_sha256": sha256Hex(ti.frag),
		},
	}
	l.opts.Logger.Warn("audit: sealing torn last line with an audit.repair record",
		zap.String("file", ti.torn.File), zap.Int64("offset", ti.torn.Offset), zap.Int("bytes", ti.torn.Length))
	if err := l.appendOne(ctx, e); err != nil {
		return err
	}
	if l.opts.CheckpointPath != "" {
		return l.anchorLocked(ctx, false)
	}
	return nil
}

// repairAnchor records that the log does not reach its anchor (an
// operator's decision, with their reason) and moves the anchor to this
// log. The old anchor stays in the KV version history and in the record.
func (l *Log) repairAnchor(ctx context.Context, ae *AnchorError) error {
	a := ae.Anchor
	e := rotator.Event{
		Type:    EventRepair,
		Actor:   l.repairActor("reset the anchor"),
		Outcome: rotator.OutcomeOK,
		Details: map[string]string{
			"repair":        RepairAnchorReset,
			"problem":       ae.Problem,
			"found":         ae.Found,
			"anchor_id":     a.ID,
			"anchor_chain":  a.Chain,
			"anchor_seq":    strconv.FormatUint(a.Seq, 10),
			"anchor_hash":   a.Hash,
			"anchor_time":   a.Time.UTC().Format(time.RFC3339Nano),
			"anchor_signed": a.Sig,
		},
	}
	l.opts.Logger.Warn("audit: the log does not reach its anchor; recording the loss and moving the anchor (operator repair)",
		zap.String("file", ae.File), zap.String("problem", ae.Problem), zap.Uint64("anchor_seq", a.Seq))
	if err := l.appendOne(ctx, e); err != nil {
		return err
	}
	return l.anchorLocked(ctx, true)
}

// RepairAnchorReset is details.repair of an audit.repair record that moved
// the anchor to a log that did not reach it.
const RepairAnchorReset = "anchor-reset"

// routineEvents are the events inside a rotation; every other event ends
// an action (a rotation's outcome, a retirement, an approval, an MFA or
// operator action, a config or daemon change) and anchors the head.
var routineEvents = map[rotator.EventType]bool{
	rotator.EventRotationStarted:    true,
	rotator.EventStepCompleted:      true,
	rotator.EventStepFailed:         true,
	rotator.EventRotationResumed:    true,
	rotator.EventSecretAccessOpened: true,
}

// anchorEvent reports whether recording e should anchor the head.
func anchorEvent(e rotator.Event) bool { return !routineEvents[e.Type] }

// Record appends e to every sink and returns only once it is durable (and,
// for an event that ends an action, anchored); any error wraps
// ErrNotDurable. A zero e.Time is set from the clock.
func (l *Log) Record(ctx context.Context, e rotator.Event) error {
	if e.Type == "" {
		return fmt.Errorf("%w: %w: empty event type", ErrNotDurable, ErrInvalidEvent)
	}
	e = sanitize(e)
	if e.Time.IsZero() {
		e.Time = l.opts.Now()
	}
	e.Time = e.Time.UTC()
	p := &pendingRecord{e: e, done: make(chan struct{})}
	l.qmu.Lock()
	l.queue = append(l.queue, p)
	lead := !l.flushing
	l.flushing = true
	l.qmu.Unlock()
	if lead {
		l.flush(context.WithoutCancel(ctx), p)
	}
	<-p.done
	return p.err
}

// pendingRecord is one Record call waiting for its batch.
type pendingRecord struct {
	e    rotator.Event
	err  error
	done chan struct{}
}

// flush writes the queued events in batches (group commit): a batch is
// every event that arrived while the previous batch was being written, so
// an idle log writes each event at once, and concurrent rotations share one
// MAC request, one write and one fsync — and one anchor — per batch
// instead of one per event. The Record call that found nobody writing
// leads; once its own event is written it hands any rest on to a new
// goroutine and returns, so no caller waits for others' events.
func (l *Log) flush(ctx context.Context, own *pendingRecord) {
	for {
		l.qmu.Lock()
		batch := l.queue
		l.queue = nil
		if len(batch) == 0 {
			l.flushing = false
			l.qmu.Unlock()
			return
		}
		l.qmu.Unlock()
		l.recordBatch(ctx, batch)
		mine := false
		for _, p := range batch {
			mine = mine || p == own
			close(p.done)
		}
		if !mine {
			continue
		}
		l.qmu.Lock()
		rest := len(l.queue) > 0
		if !rest {
			l.flushing = false
		}
		l.qmu.Unlock()
		if rest {
			go l.flush(ctx, nil)
		}
		return
	}
}

// recordBatch appends the batch's events to every sink; each pending
// record gets its own outcome (any error wraps ErrNotDurable).
func (l *Log) recordBatch(ctx context.Context, batch []*pendingRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fail := func(ps []*pendingRecord, err error) {
		for _, p := range ps {
			if p.err == nil {
				p.err = fmt.Errorf("%w: %w", ErrNotDurable, err)
			}
		}
	}
	if l.closed {
		fail(batch, ErrClosed)
		return
	}
	if l.file != nil {
		if err := l.recordFile(ctx, batch); err != nil {
			fail(batch, err)
			return
		}
	}
	if l.vault != nil {
		for _, p := range batch {
			if p.err != nil {
				continue
			}
			e := p.e
			_, err := l.vault.append(ctx, func(seq uint64, prev string) ([]byte, error) {
				r := Record{V: SchemaVersion, Seq: seq, Event: e, PrevHash: prev}
				return encodeLine(nil, &r, l.signer(ctx))
			})
			if err != nil {
				p.err = fmt.Errorf("%w: %w", ErrNotDurable, err)
			}
		}
	}
}

// recordFile appends the batch's events to the file under the writers'
// lock, after catching up with other writers, and anchors once when an
// event of the batch ends an action. An event whose record would exceed
// MaxLineBytes fails alone. Callers hold l.mu.
func (l *Log) recordFile(ctx context.Context, batch []*pendingRecord) error {
	if l.broken != nil {
		return fmt.Errorf("audit: file sink stopped after an earlier failure: %w", l.broken)
	}
	if err := l.lock.lock(); err != nil {
		return err
	}
	defer l.lock.unlock()
	if err := l.syncTail(ctx); err != nil {
		return err
	}
	anchor, err := l.appendFile(ctx, batch)
	if err != nil {
		return err
	}
	if l.opts.CheckpointPath != "" && (!l.anchored || anchor || l.sinceCP >= l.opts.CheckpointEvery) {
		return l.anchorLocked(ctx, false)
	}
	return nil
}

func (l *Log) signer(ctx context.Context) func(string) (string, error) {
	return func(hash string) (string, error) {
		m, err := l.opts.MAC.Sign(ctx, []string{hash})
		if err != nil {
			return "", err
		}
		return m[0], nil
	}
}

// appendFile links e into the file chain. Callers hold l.mu and the file
// lock.
func (l *Log) appendFile(ctx context.Context, batch []*pendingRecord) (anchor bool, err error) {
	if l.broken != nil {
		return false, fmt.Errorf("audit: file sink stopped after an earlier failure: %w", l.broken)
	}
	// Chain the records and hash them, then MAC every hash in one call.
	type rec struct {
		r Record
		p *pendingRecord
	}
	recs := make([]rec, 0, len(batch))
	seq, head := l.seq, l.head
	var body []byte
	for _, p := range batch {
		r := Record{V: SchemaVersion, Seq: seq + 1, Event: p.e, PrevHash: head}
		body = AppendCanonical(body[:0], &r)
		if len(body)+len(hashMarker)+lineOverhead > MaxLineBytes {
			p.err = fmt.Errorf("%w: audit: record of %d bytes exceeds %d", ErrNotDurable, len(body), MaxLineBytes)
			continue
		}
		r.Hash = HashCanonical(body)
		seq, head = r.Seq, r.Hash
		recs = append(recs, rec{r: r, p: p})
		anchor = anchor || anchorEvent(p.e)
	}
	if len(recs) == 0 {
		return false, nil
	}
	hashes := make([]string, len(recs))
	for i := range recs {
		hashes[i] = recs[i].r.Hash
	}
	macs, err := l.opts.MAC.Sign(ctx, hashes)
	if err == nil && len(macs) != len(hashes) {
		err = fmt.Errorf("audit: %d MACs for %d records", len(macs), len(hashes))
	}
	if err != nil {
		return false, err
	}
	var lines []byte
	for i := range recs {
		r := recs[i].r
		mac := macs[i]
		line, err := encodeLine(l.buf, &r, func(string) (string, error) { return mac, nil })
		if err != nil {
			return false, err
		}
		l.buf = line[:0]
		if len(recs) == 1 {
			lines = line
			break
		}
		lines = append(lines, line...)
	}
	if err := l.file.append(lines); err != nil {
		// The lines may be partly on disk: never append after them.
		l.broken = err
		return false, err
	}
	first := l.seq == 0
	l.seq, l.head = seq, head
	if first {
		l.chain = ChainID(recs[0].r.Hash)
	}
	l.sinceCP += len(recs)
	return anchor, nil
}

// appendOne appends a single record (checkpoints, repairs) outside a
// batch. Callers hold l.mu and the file lock.
func (l *Log) appendOne(ctx context.Context, e rotator.Event) error {
	p := &pendingRecord{e: e}
	if _, err := l.appendFile(ctx, []*pendingRecord{p}); err != nil {
		return err
	}
	return p.err
}

// lineOverhead bounds what a line adds to its canonical body: the hash
// (64 hex), the MAC (a transit or local MAC is well under 200 bytes) and
// the punctuation.
const lineOverhead = 64 + 256 + 16

// anchorLocked signs the file chain's head, appends the signed statement
// as an audit.checkpoint record (so the file verifies offline) and
// advances the anchor in Vault with check-and-set. Callers hold l.mu and
// the file lock.
func (l *Log) anchorLocked(ctx context.Context, reset bool) error {
	if l.seq == 0 || l.opts.CheckpointPath == "" {
		return nil
	}
	a := Anchor{ID: l.opts.AnchorID, Chain: l.chain, Seq: l.seq, Hash: l.head, Time: l.opts.Now().UTC(), Mode: l.mode, File: l.opts.File}
	sig, err := l.opts.Signer.SignHead(ctx, a.Message())
	if err != nil {
		return fmt.Errorf("audit: sign the chain head: %w", err)
	}
	a.Sig = sig
	cp := rotator.Event{
		Type: EventCheckpoint, Time: a.Time, Actor: rotator.Actor{Kind: rotator.ActorSystem}, Outcome: rotator.OutcomeOK,
		Details: map[string]string{
			"anchor_id": a.ID, "chain": a.Chain, "seq": strconv.FormatUint(a.Seq, 10), "hash": a.Hash,
			"time": a.Time.Format(time.RFC3339Nano), "mode": a.Mode, "sig": a.Sig,
		},
	}
	if err := l.appendOne(ctx, cp); err != nil {
		return err
	}
	if err := writeAnchor(ctx, l.opts.Vault, l.opts.KVMount, l.opts.CheckpointPath, a, reset); err != nil {
		l.opts.Logger.Error("audit: anchor not written", zap.Uint64("seq", a.Seq), zap.Error(err))
		return err
	}
	l.anchored, l.sinceCP = true, 0
	return nil
}

// Checkpoint anchors the file chain's head now.
func (l *Log) Checkpoint(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil || l.closed {
		return nil
	}
	if err := l.lock.lock(); err != nil {
		return err
	}
	defer l.lock.unlock()
	if err := l.syncTail(ctx); err != nil {
		return err
	}
	return l.anchorLocked(ctx, false)
}

// Head returns the file chain's last sequence number, hash and chain id.
func (l *Log) Head() (seq uint64, hash, chain string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.head, l.chain
}

// Fingerprint returns "fp1:" and the base64url of the first 16 bytes of
// HMAC-SHA256 under a key derived from the MAC key; "" for an empty secret.
func (l *Log) Fingerprint(s rotator.Secret) string {
	return FingerprintWith(l.fpKey, s.Reveal())
}

// Close anchors the head (when anything is not anchored yet) and closes
// the file. It is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	if l.file != nil {
		if l.broken == nil && l.opts.CheckpointPath != "" && (l.sinceCP > 0 || !l.anchored) {
			ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			errs = append(errs, l.closeAnchor(ctx))
			cancel()
		}
		errs = append(errs, l.file.close(), l.lock.close())
	}
	return errors.Join(errs...)
}

func (l *Log) closeAnchor(ctx context.Context) error {
	if err := l.lock.lock(); err != nil {
		return err
	}
	defer l.lock.unlock()
	if err := l.syncTail(ctx); err != nil {
		return err
	}
	return l.anchorLocked(ctx, false)
}

// sensitiveKey reports whether a details key names secret material.
func sensitiveKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"secret", "password", "passwd", "private", "seed", "credential"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	for _, s := range []string{"token", "access_token", "refresh_token", "id_token", "client_assertion", "otp", "totp"} {
		if k == s {
			return true
		}
	}
	return false
}

// sanitize copies e's details, replacing values under secret-sounding keys
// by "<redacted>" unless they are already fingerprints, and notes which
// keys it redacted. It is a safety net; the engine never passes secrets.
func sanitize(e rotator.Event) rotator.Event {
	if len(e.Details) == 0 {
		return e
	}
	d := make(map[string]string, len(e.Details)+1)
	var red []string
	for k, v := range e.Details {
		if v != "" && sensitiveKey(k) && !strings.HasPrefix(v, fingerprintPrefix) {
			v = "<redacted>"
			red = append(red, k)
		}
		d[k] = v
	}
	if len(red) > 0 {
		sort.Strings(red)
		d["audit_redacted"] = strings.Join(red, ",")
	}
	e.Details = d
	return e
}

// FailOpen wraps log so that a failed Record is logged at Error and
// swallowed: the engine keeps going without a durable trail. It is what
// config audit.fail_closed: false selects; the default is fail closed.
func FailOpen(log rotator.AuditLog, logger *zap.Logger) rotator.AuditLog {
	if logger == nil {
		logger = zap.NewNop()
	}
	return failOpen{log: log, logger: logger}
}

type failOpen struct {
	log    rotator.AuditLog
	logger *zap.Logger
}

func (f failOpen) Record(ctx context.Context, e rotator.Event) error {
	if err := f.log.Record(ctx, e); err != nil {
		f.logger.Error("audit: event not recorded (fail_closed is off, continuing)",
			zap.String("event", string(e.Type)), zap.String("app", e.App),
			zap.String("rotation_id", e.RotationID), zap.Error(err))
	}
	return nil
}

func (f failOpen) Fingerprint(s rotator.Secret) string { return f.log.Fingerprint(s) }
