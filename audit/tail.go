package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrFileGone means the live file was deleted, moved away or cut shorter
// while this writer had it open. The writer stops (fail closed) rather than
// append to an unlinked file nobody will read, or after a cut.
var ErrFileGone = errors.New("audit: live log file changed under the writer")

// syncTail catches up with records other writers appended since this
// writer's last append, so that the next record links to the real head.
// Callers hold l.mu and the file lock, so the file is quiet.
//
// Same file, same size: nothing happened. Same file, larger: read the new
// lines from where this writer left off, check each links to the previous
// one and the MAC of the last. Another file (another writer rotated it):
// reopen and recover the head like New does. Missing, or shorter than this
// writer wrote it: someone deleted, moved or cut it — stop.
func (l *Log) syncTail(ctx context.Context) error {
	fi, err := os.Stat(l.opts.File)
	if errors.Is(err, os.ErrNotExist) {
		l.broken = fmt.Errorf("%w: %s no longer exists (deleted or moved while open); restore it or run `ecarotator audit repair`", ErrFileGone, l.opts.File)
		return l.broken
	}
	if err != nil {
		return fmt.Errorf("audit: stat %s: %w", l.opts.File, err)
	}
	if idOf(fi) != l.file.id {
		return l.reopen(ctx)
	}
	switch size := fi.Size(); {
	case size == l.file.size:
		return nil
	case size < l.file.size:
		l.broken = fmt.Errorf("%w: %s shrank from %d to %d bytes while open (cut)", ErrFileGone, l.opts.File, l.file.size, size)
		return l.broken
	}
	return l.catchUp(ctx)
}

// catchUp reads the records other writers appended after l.file.size.
func (l *Log) catchUp(ctx context.Context) error {
	f, err := os.Open(l.opts.File)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", l.opts.File, err)
	}
	defer f.Close()
	if _, err := f.Seek(l.file.size, io.SeekStart); err != nil {
		return fmt.Errorf("audit: seek %s: %w", l.opts.File, err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	off := l.file.size
	var last *Record
	seq, head, chain := l.seq, l.head, l.chain
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > MaxLineBytes {
			return fmt.Errorf("audit: %s: a line appended by another writer at offset %d is too long", l.opts.File, off)
		}
		if err == io.EOF {
			if len(line) > 0 {
				return &TornTailError{File: l.opts.File, Offset: off, Length: len(line)}
			}
			break
		}
		if err != nil {
			return fmt.Errorf("audit: read %s: %w", l.opts.File, err)
		}
		r, perr := ParseLine(line)
		if perr != nil {
			return fmt.Errorf("audit: %s: record appended by another writer at offset %d: %w (run `ecarotator audit verify`)", l.opts.File, off, perr)
		}
		if r.Seq != seq+1 || r.PrevHash != head {
			return fmt.Errorf("%w: %s: seq %d at offset %d does not follow seq %d", ErrBadTail, l.opts.File, r.Seq, off, seq)
		}
		seq, head, last = r.Seq, r.Hash, r
		if seq == 1 {
			chain = ChainID(r.Hash)
		}
		off += int64(len(line))
	}
	if last == nil {
		return nil
	}
	ok, err := checkOne(ctx, l.opts.MAC, last.Hash, last.MAC)
	if err != nil {
		return fmt.Errorf("audit: check record appended by another writer: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w: seq %d in %s (appended by another writer) has an invalid MAC", ErrBadTail, last.Seq, l.opts.File)
	}
	l.seq, l.head, l.chain, l.file.size = seq, head, chain, off
	return nil
}

// reopen follows a rotation done by another writer: the name now points
// to a new file. The head is recovered as New does; it must continue this
// writer's chain.
func (l *Log) reopen(ctx context.Context) error {
	ti, err := readTail(l.opts.File)
	if err != nil {
		return err
	}
	if ti.torn != nil {
		return ti.torn
	}
	if ti.last == nil || ti.last.Seq < l.seq || (l.chain != "" && ChainID(ti.genesis) != l.chain) {
		l.broken = fmt.Errorf("%w: %s was replaced while open (it no longer continues chain %s at seq %d)", ErrFileGone, l.opts.File, l.chain, l.seq)
		return l.broken
	}
	ok, err := checkOne(ctx, l.opts.MAC, ti.last.Hash, ti.last.MAC)
	if err != nil {
		return fmt.Errorf("audit: check last record: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w: seq %d in %s has an invalid MAC", ErrBadTail, ti.last.Seq, l.opts.File)
	}
	if err := l.file.close(); err != nil {
		return fmt.Errorf("audit: close %s: %w", l.opts.File, err)
	}
	if err := l.file.open(); err != nil {
		l.broken = err
		return err
	}
	l.seq, l.head = ti.last.Seq, ti.last.Hash
	return nil
}
