//go:build unix

package audit

import (
	"fmt"
	"os"
	"syscall"
)

// fileLock is an advisory exclusive lock (flock) on <log>.lock, taken
// around every append so that the daemon and short-lived CLI writers
// (mfa enroll, reveal, approve, rotate, repair) never interleave: each
// writer re-reads the tail under the lock before it appends. A sidecar file
// is locked rather than the log itself because the log is renamed when it
// rotates, and a lock on a renamed file protects nothing.
type fileLock struct{ f *os.File }

func openLock(logPath string) (*fileLock, error) {
	f, err := os.OpenFile(logPath+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open lock %s.lock: %w", logPath, err)
	}
	return &fileLock{f: f}, nil
}

func (l *fileLock) lock() error {
	for {
		err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_EX)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("audit: lock %s: %w", l.f.Name(), err)
		}
		return nil
	}
}

func (l *fileLock) unlock() {
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
}

func (l *fileLock) close() error { return l.f.Close() }

// fileID identifies the file behind a name (device and inode).
type fileID struct{ dev, ino uint64 }

func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)} //nolint:unconvert // widths differ by platform
	}
	return fileID{}
}

// openLockReadOnly opens an existing lock file for a reader (verify); it
// never creates one.
func openLockReadOnly(logPath string) (*fileLock, error) {
	f, err := os.Open(logPath + ".lock")
	if err != nil {
		return nil, err
	}
	return &fileLock{f: f}, nil
}
