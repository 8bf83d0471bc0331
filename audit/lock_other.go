//go:build !unix

package audit

import (
	"os"
)

// fileLock is a no-op where flock is unavailable: one writer per file must
// then be ensured by the deployment (ecarotator ships for Linux).
type fileLock struct{}

func openLock(string) (*fileLock, error) { return &fileLock{}, nil }
func (*fileLock) lock() error            { return nil }
func (*fileLock) unlock()                {}
func (*fileLock) close() error           { return nil }

type fileID struct{ dev, ino uint64 }

func idOf(os.FileInfo) fileID { return fileID{} }

func openLockReadOnly(string) (*fileLock, error) { return &fileLock{}, nil }
