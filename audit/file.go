package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// File layout. The live file is the configured path (audit.log). When it
// would grow past MaxFileBytes it is renamed to audit.log.<n+1>, where n is
// the highest number already used, and a fresh audit.log is started: one
// atomic rename, no shifting, so a crash mid-rotation cannot scramble the
// order. Oldest first: audit.log.1, audit.log.2, …, audit.log. The hash chain
// runs across all of them; files are never deleted by ecarotator.

// ErrTornTail marks a log whose last line is incomplete (a crash in the
// middle of an append). The writer refuses to append after it until an
// operator repairs it (Options.RepairTornTail / `ecarotator audit repair`).
var ErrTornTail = errors.New("audit: torn last line")

// TornTailError locates a torn last line.
type TornTailError struct {
	File   string // the file holding it
	Line   int    // 1-based line number of the fragment
	Offset int64  // byte offset where the fragment starts
	Length int    // fragment length in bytes
}

func (e *TornTailError) Error() string {
	return fmt.Sprintf("audit: torn last line in %s: line %d, offset %d, %d bytes without a newline (a crash during an append); run `ecarotator audit repair` to seal it with an audit.repair record",
		e.File, e.Line, e.Offset, e.Length)
}

// Is makes errors.Is(err, ErrTornTail) true.
func (e *TornTailError) Is(target error) bool { return target == ErrTornTail }

// Files returns the files of the log at path, oldest first: the rotated
// files path.1, path.2, … then path itself (when it exists).
func Files(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: list %s: %w", dir, err)
	}
	type num struct {
		n    int
		name string
	}
	var rotated []num
	live := false
	for _, e := range entries {
		name := e.Name()
		if name == base {
			live = true
			continue
		}
		suffix, ok := strings.CutPrefix(name, base+".")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || n <= 0 || strconv.Itoa(n) != suffix {
			continue
		}
		rotated = append(rotated, num{n, name})
	}
	sort.Slice(rotated, func(i, j int) bool { return rotated[i].n < rotated[j].n })
	out := make([]string, 0, len(rotated)+1)
	for _, r := range rotated {
		out = append(out, filepath.Join(dir, r.name))
	}
	if live {
		out = append(out, path)
	}
	return out, nil
}

func lastRotatedNumber(path string) (int, error) {
	files, err := Files(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		if f == path {
			continue
		}
		k, _ := strconv.Atoi(strings.TrimPrefix(f, path+"."))
		n = max(n, k)
	}
	return n, nil
}

// fileSink appends lines to the live file with O_APPEND and fsync.
type fileSink struct {
	path   string
	max    int64
	f      *os.File
	id     fileID // the file behind f, to notice a rename or replacement
	size   int64  // where this writer knows the file ends
	noSync bool   // benchmarks only: the baseline without fsync
}

func openFileSink(path string, max int64, noSync bool) (*fileSink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create folder for %s: %w", path, err)
	}
	s := &fileSink{path: path, max: max, noSync: noSync}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *fileSink) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", s.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: stat %s: %w", s.path, err)
	}
	s.f, s.size, s.id = f, st.Size(), idOf(st)
	return syncDir(s.path)
}

// append writes one complete line and makes it durable. A short write
// leaves a torn tail that the next open reports; the caller stops using the
// sink after any error.
func (s *fileSink) append(line []byte) error {
	if s.size > 0 && s.size+int64(len(line)) > s.max {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	n, err := s.f.Write(line)
	s.size += int64(n) // under the writers' lock: nobody else appended meanwhile
	if err != nil {
		return fmt.Errorf("audit: write %s: %w", s.path, err)
	}
	if s.noSync {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("audit: fsync %s: %w", s.path, err)
	}
	return nil
}

func (s *fileSink) rotate() error {
	n, err := lastRotatedNumber(s.path)
	if err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("audit: close %s: %w", s.path, err)
	}
	next := fmt.Sprintf("%s.%d", s.path, n+1)
	if err := os.Rename(s.path, next); err != nil {
		return fmt.Errorf("audit: rotate %s: %w", s.path, err)
	}
	return s.open()
}

func (s *fileSink) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// syncDir fsyncs the folder holding path so a new or renamed file survives a
// crash.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("audit: open folder of %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("audit: fsync folder of %s: %w", path, err)
	}
	return nil
}

// tailInfo is what opening a log learns from its files.
type tailInfo struct {
	last    *Record // last complete record (nil: empty log)
	genesis string  // hash of seq 1 (chain id source)
	torn    *TornTailError
	frag    []byte // the torn fragment
}

// readTail inspects the log at path: the first record of the oldest file
// and the last complete record of the newest non-empty file, plus a torn
// fragment after it, if any.
func readTail(path string) (tailInfo, error) {
	var ti tailInfo
	files, err := Files(path)
	if err != nil || len(files) == 0 {
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		return ti, err
	}
	if ti.genesis, err = genesisHash(files[0]); err != nil {
		return ti, err
	}
	for i := len(files) - 1; i >= 0; i-- {
		line, frag, fragOff, err := lastLine(files[i])
		if err != nil {
			return ti, err
		}
		if frag != nil {
			if i != len(files)-1 {
				return ti, fmt.Errorf("audit: %s (a rotated file) does not end with a newline", files[i])
			}
			lineNo, err := countLines(files[i], fragOff)
			if err != nil {
				return ti, err
			}
			ti.torn = &TornTailError{File: files[i], Line: lineNo + 1, Offset: fragOff, Length: len(frag)}
			ti.frag = frag
		}
		if line == nil {
			if frag != nil && fragOff > 0 {
				return ti, fmt.Errorf("audit: %s: torn fragment too long to locate the record before it", files[i])
			}
			continue // empty (or only a fragment): look at the previous file
		}
		r, err := ParseLine(line)
		if err != nil {
			return ti, fmt.Errorf("audit: last record of %s: %w (run `ecarotator audit verify`)", files[i], err)
		}
		ti.last = r
		return ti, nil
	}
	return ti, nil
}

// genesisHash returns the hash of the record with seq 1 among the first
// lines of path ("" when none): usually line 1, line 2 when line 1 is a
// torn fragment sealed by an audit.repair record.
func genesisHash(path string) (string, error) {
	var hash string
	errStop := errors.New("stop")
	err := eachLine(path, func(line []byte, p position) error {
		if r, err := ParseLine(line); err == nil && r.Seq == 1 {
			hash = r.Hash
			return errStop
		}
		if p.line >= 2 {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return "", err
	}
	return hash, nil
}

// lastLine returns the last newline-terminated line of path and, when the
// file does not end with a newline, the fragment after it and its offset.
func lastLine(path string) (line, frag []byte, fragOff int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("audit: open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("audit: stat %s: %w", path, err)
	}
	size := st.Size()
	if size == 0 {
		return nil, nil, 0, nil
	}
	n := min(size, int64(2*MaxLineBytes+2))
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return nil, nil, 0, fmt.Errorf("audit: read %s: %w", path, err)
	}
	base := size - n
	if buf[len(buf)-1] != '\n' {
		i := bytes.LastIndexByte(buf, '\n')
		frag = append([]byte(nil), buf[i+1:]...)
		fragOff = base + int64(i+1)
		buf = buf[:i+1]
		if i < 0 && base > 0 {
			return nil, frag, fragOff, nil
		}
	}
	if len(buf) == 0 {
		return nil, frag, fragOff, nil
	}
	j := bytes.LastIndexByte(buf[:len(buf)-1], '\n')
	if j < 0 && base > 0 {
		return nil, frag, fragOff, fmt.Errorf("audit: %s: last line longer than %d bytes", path, MaxLineBytes)
	}
	return append([]byte(nil), buf[j+1:]...), frag, fragOff, nil
}

// countLines counts newlines in path before offset.
func countLines(path string, offset int64) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("audit: open %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n, left := 0, offset
	for left > 0 {
		k, err := f.Read(buf[:min(int64(len(buf)), left)])
		n += bytes.Count(buf[:k], []byte{'\n'})
		left -= int64(k)
		if err != nil {
			if err == io.EOF {
				break
			}
			return 0, fmt.Errorf("audit: read %s: %w", path, err)
		}
	}
	return n, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
