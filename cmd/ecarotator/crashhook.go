//go:build crashtest

package main

import (
	"os"
	"syscall"
)

// In a crashtest build, ECAROTATOR_CRASH_AT=<hook point> makes the process
// kill itself with SIGKILL at that point of a rotation: a real crash that
// skips every deferred cleanup. Integration crash tests use it.
func init() {
	at := os.Getenv("ECAROTATOR_CRASH_AT")
	if at == "" {
		return
	}
	crashHook = func(point string) error {
		if point == at {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never returns: the signal ends the process
		}
		return nil
	}
}
