package scheduler

import "time"

// ClearRetry drops app's planned retry and re-plans it from its schedule
// and max age. The daemon calls it after the previous pair was revoked or
// retired: a run that was waiting for the overlap to end has nothing left
// to wait for (review L2). A running app is left alone (its own finish
// re-plans it). Unknown apps are ignored.
func (s *Scheduler) ClearRetry(app string) {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	e, ok := s.apps[app]
	if ok && !e.running && !e.retryAt.IsZero() {
		e.retryAt = time.Time{}
		e.attempts = 0
		s.plan(e, now)
	}
	s.mu.Unlock()
	if ok {
		s.poke()
	}
}
