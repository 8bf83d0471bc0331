package rotator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
)

// SecretAccessHolder is one rotation (or retire) relying on its Dev Hub's
// secret-access setting being open. Lease is the app lease of that run: a
// holder whose lease is gone (expired, released or taken over) crashed or
// gave up, and is dropped so the count cannot leak.
type SecretAccessHolder struct {
	App   string    `json:"app"`
	Lease Lease     `json:"lease"`
	Since time.Time `json:"since"`
}

// SecretAccessState is a Dev Hub's shared opening of the secret-access
// setting (toggle mode): the value the setting had before the first holder
// opened it, the holders, and — while the last holder restores the setting —
// that closer. The zero value means nobody holds it.
type SecretAccessState struct {
	Prior   *bool
	Holders map[string]SecretAccessHolder // by app name
	Closer  *SecretAccessHolder
}

// SecretAccessLedger keeps SecretAccessState per Dev Hub with check-and-set, so that
// every replica agrees on who holds an opening.
type SecretAccessLedger interface {
	// LoadSecretAccess returns the state and its version (zero state and 0
	// when there is none).
	LoadSecretAccess(ctx context.Context, devhub string) (SecretAccessState, int, error)
	// SaveSecretAccess writes s if the stored version is still cas; ErrConflict
	// otherwise.
	SaveSecretAccess(ctx context.Context, devhub string, s SecretAccessState, cas int) (int, error)
}

// JournalLedger is the default SecretAccessLedger: it keeps each Dev Hub's
// state as a journal entry named SecretAccessKey(devhub), so any Journal (the
// Vault adapter writes <state_prefix>/secret-access/<devhub>) carries it with the
// journal's own check-and-set and no further adapter.
type JournalLedger struct{ Journal Journal }

var _ SecretAccessLedger = JournalLedger{}

// SecretAccessKey is the journal name of devhub's shared opening. App names
// cannot contain "/", so it never collides with an app's journal.
func SecretAccessKey(devhub string) string { return "secret-access/" + devhub }

const (
	extraHolderPrefix = "holder."
	extraCloser       = "closer"
)

// LoadSecretAccess implements SecretAccessLedger.
func (l JournalLedger) LoadSecretAccess(ctx context.Context, devhub string) (SecretAccessState, int, error) {
	j, v, err := l.Journal.Load(ctx, SecretAccessKey(devhub))
	if errors.Is(err, ErrNotFound) {
		return SecretAccessState{}, 0, nil
	}
	if err != nil {
		return SecretAccessState{}, 0, err
	}
	s := SecretAccessState{Prior: j.PriorSecretAccess, Holders: map[string]SecretAccessHolder{}}
	for k, raw := range j.Extra {
		var h SecretAccessHolder
		if err := json.Unmarshal([]byte(raw), &h); err != nil {
			return SecretAccessState{}, 0, fmt.Errorf("secret access of %s: decode %s: %w", devhub, k, err)
		}
		switch {
		case k == extraCloser:
			s.Closer = &h
		case strings.HasPrefix(k, extraHolderPrefix):
			s.Holders[strings.TrimPrefix(k, extraHolderPrefix)] = h
		}
	}
	return s, v, nil
}

// SaveSecretAccess implements SecretAccessLedger.
func (l JournalLedger) SaveSecretAccess(ctx context.Context, devhub string, s SecretAccessState, cas int) (int, error) {
	j := JournalEntry{App: SecretAccessKey(devhub), Step: StepExpose, PriorSecretAccess: s.Prior, Extra: map[string]string{}}
	put := func(k string, h SecretAccessHolder) error {
		b, err := json.Marshal(h)
		j.Extra[k] = string(b)
		return err
	}
	for app, h := range s.Holders {
		if err := put(extraHolderPrefix+app, h); err != nil {
			return 0, err
		}
	}
	if s.Closer != nil {
		if err := put(extraCloser, *s.Closer); err != nil {
			return 0, err
		}
	}
	return l.Journal.Save(ctx, SecretAccessKey(devhub), j, cas, nil)
}

// ledgerTries bounds the check-and-set loops on the ledger.
const ledgerTries = 8

// alive reports whether h's lease still holds. Only a definite "gone"
// (ErrFenced, ErrNotFound) drops a holder; when Vault cannot tell, the
// holder is kept, because closing under a live rotation breaks it while
// keeping a dead holder only delays the restore until the next look.
func (e *Engine) alive(ctx context.Context, h SecretAccessHolder) bool {
	err := e.o.Locker.Check(ctx, h.Lease)
	return err == nil || !(errors.Is(err, ErrFenced) || errors.Is(err, ErrNotFound))
}

// prune drops holders (and a closer) whose lease is gone, and the entries
// of app itself (a leftover of its own crashed run: I3 says no other run
// of app is alive).
func (e *Engine) prune(ctx context.Context, s *SecretAccessState, app string) {
	for name, h := range s.Holders {
		if name == app || !e.alive(ctx, h) {
			delete(s.Holders, name)
		}
	}
	if s.Closer != nil && (s.Closer.App == app || !e.alive(ctx, *s.Closer)) {
		s.Closer = nil
	}
}

// secretAccess reads the secret-access setting once per call: after this
// call read it or switched it, the value is known until the call leaves
// the Dev Hub's opening (which forgets it).
func (r *run) secretAccess(ctx context.Context) (bool, error) {
	if r.accessKnown {
		return r.accessOn, nil
	}
	on, err := r.iss.SecretAccess(ctx)
	if err != nil {
		return false, err
	}
	r.accessKnown, r.accessOn = true, on
	return on, nil
}

func (r *run) holder(now time.Time) SecretAccessHolder {
	return SecretAccessHolder{App: r.app.Name, Lease: r.appLease.l, Since: now}
}

// joinSecretAccess makes r a holder of its Dev Hub's opening and returns the
// setting's value before the opening (I5). The first holder reads it from
// Salesforce; later holders take the recorded one, even when the setting is
// on only because of that opening. A state whose holders all died keeps
// its recorded prior for the same reason. While another run restores the
// setting, joining fails with ErrSettingBusy and ErrLocked rather than rely
// on a setting about to be closed; the attempt ends without counting as a
// failure (see contended) and the caller looks again soon.
func (e *Engine) joinSecretAccess(ctx context.Context, r *run) (bool, error) {
	for try := 0; try < ledgerTries; try++ {
		// A value read before r holds the opening (preflight, or a lost
		// try) may be stale by now: read again under the ledger version
		// this try writes against.
		r.accessKnown = false
		s, v, err := e.loadLedger(ctx, r.app.DevHub, try)
		if err != nil {
			return false, fmt.Errorf("load secret access holders of %s: %w", r.app.DevHub, err)
		}
		if s.Holders == nil {
			s.Holders = map[string]SecretAccessHolder{}
		}
		e.prune(ctx, &s, r.app.Name)
		if s.Closer != nil {
			return false, fmt.Errorf("secret access of dev hub %s is being restored by %s: %w: %w", r.app.DevHub, s.Closer.App, ErrSettingBusy, ErrLocked)
		}
		if s.Prior == nil && len(s.Holders) == 0 && r.j.PriorSecretAccess != nil {
			// The ledger lost its record while r's journal kept the prior
			// value of r's own earlier opening: trust the journal, as the
			// setting may be on only because of that opening.
			s.Prior = r.j.PriorSecretAccess
		}
		if s.Prior == nil {
			// Nobody holds an opening: the setting is at its own value.
			// Read here, the value stays good for r's opening: whoever
			// opens or closes it must first change the ledger, which
			// fails r's save below.
			on, err := r.secretAccess(ctx)
			if err != nil {
				return false, fmt.Errorf("read secret access setting: %w", err)
			}
			s.Prior = &on
		}
		s.Holders[r.app.Name] = r.holder(e.now())
		if _, err := e.saveLedger(ctx, r.app.DevHub, s, v); err != nil {
			if errors.Is(err, ErrConflict) {
				continue
			}
			return false, fmt.Errorf("join secret access holders of %s: %w", r.app.DevHub, err)
		}
		r.accessHeld = true
		if n := len(s.Holders); n > 1 {
			r.log.Info("sharing the open secret access setting", zap.Int("holders", n))
		}
		return *s.Prior, nil
	}
	// Every try lost a check-and-set to another rotation of the Dev Hub:
	// contention, not a failure (see ErrSettingBusy).
	return false, fmt.Errorf("join secret access holders of %s: %w: %w", r.app.DevHub, ErrSettingBusy, ErrLocked)
}

// leaveSecretAccess removes r from its Dev Hub's opening. Other live holders
// keep the setting open; the last one out restores the prior value (taken
// from the ledger, else from r's journal) and audits it. It announces
// itself as closer first, so nobody joins an opening that is being closed,
// and clears the state once the setting is restored. Every part re-reads
// before it acts, so a crash anywhere is finished by the next leave.
func (e *Engine) leaveSecretAccess(ctx context.Context, r *run) error {
	for try := 0; try < ledgerTries; try++ {
		s, v, err := e.loadLedger(ctx, r.app.DevHub, try)
		if err != nil {
			return fmt.Errorf("load secret access holders of %s: %w", r.app.DevHub, err)
		}
		if s.Holders == nil {
			s.Holders = map[string]SecretAccessHolder{}
		}
		// A closer entry of this app is what a crashed restore of it left
		// (restoring is announced there before the setting is switched).
		ownCloser := s.Closer != nil && s.Closer.App == r.app.Name
		e.prune(ctx, &s, r.app.Name)
		if s.Closer != nil {
			// Another run is restoring the setting right now: that is
			// exactly what r would do, so r is simply out.
			if _, err := e.saveLedger(ctx, r.app.DevHub, s, v); errors.Is(err, ErrConflict) {
				continue
			} else if err != nil {
				return fmt.Errorf("leave secret access holders of %s: %w", r.app.DevHub, err)
			}
			r.accessHeld, r.accessKnown = false, false
			return nil
		}
		if len(s.Holders) > 0 {
			if _, err := e.saveLedger(ctx, r.app.DevHub, s, v); errors.Is(err, ErrConflict) {
				continue
			} else if err != nil {
				return fmt.Errorf("leave secret access holders of %s: %w", r.app.DevHub, err)
			}
			r.accessHeld, r.accessKnown = false, false
			r.log.Info("secret access stays open for other rotations of the dev hub", zap.Int("holders", len(s.Holders)))
			return nil
		}
		prior := s.Prior
		if prior == nil {
			prior = r.j.PriorSecretAccess
		}
		if prior == nil || *prior {
			// The setting was on before: nothing to restore, only forget.
			if _, err := e.saveLedger(ctx, r.app.DevHub, SecretAccessState{}, v); errors.Is(err, ErrConflict) {
				continue
			} else if err != nil {
				return fmt.Errorf("leave secret access holders of %s: %w", r.app.DevHub, err)
			}
			r.accessHeld = false
			return nil
		}
		closer := r.holder(e.now())
		s.Closer = &closer
		cv, err := e.saveLedger(ctx, r.app.DevHub, s, v)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("announce restore of secret access of %s: %w", r.app.DevHub, err)
		}
		if err := e.closeSecretAccess(ctx, r, ownCloser); err != nil {
			return err
		}
		if _, err := e.saveLedger(ctx, r.app.DevHub, SecretAccessState{}, cv); err != nil && !errors.Is(err, ErrConflict) {
			// The setting is restored; the next join or leave prunes the
			// stale closer once r's lease is gone.
			r.log.Warn("clear secret access holders after restore", zap.Error(err))
		}
		r.accessHeld = false
		return nil
	}
	return fmt.Errorf("leave secret access holders of %s: %w: %w", r.app.DevHub, ErrSettingBusy, ErrLocked)
}

// closeSecretAccess switches the setting off when it is on (re-read first, so
// a second run after a crash changes nothing; a call that saw it on itself
// and held the opening since skips the read) and audits the restore.
// crashedClose says the ledger still named this app as closer: an earlier
// attempt announced the restore and died, maybe after switching.
func (e *Engine) closeSecretAccess(ctx context.Context, r *run, crashedClose bool) error {
	on, err := r.secretAccess(ctx)
	if err != nil {
		return fmt.Errorf("read secret access setting: %w", err)
	}
	if !on && (crashedClose || r.j.Extra[ExtraOp] == "close_secret_access") {
		// A crashed attempt restored the setting and died before its
		// event was recorded (I4).
		return e.record(ctx, r, EventSecretAccessRestored, StepFinish, OutcomeOK, nil, map[string]string{"value": "false", "recovered": "true"})
	}
	if !on {
		return nil
	}
	r.accessKnown = false
	if err := e.mutate(ctx, r, "close_secret_access", func() error { return r.iss.SetSecretAccess(ctx, false) }); err != nil {
		return fmt.Errorf("restore secret access: %w", err)
	}
	r.log.Info("secret access restored")
	return e.record(ctx, r, EventSecretAccessRestored, StepFinish, OutcomeOK, nil, map[string]string{"value": "false"})
}

// clone copies s so that the memo and a run never share a map.
func (s SecretAccessState) clone() SecretAccessState {
	out := SecretAccessState{Prior: s.Prior, Closer: s.Closer}
	if s.Prior != nil {
		p := *s.Prior
		out.Prior = &p
	}
	if s.Closer != nil {
		c := *s.Closer
		out.Closer = &c
	}
	if s.Holders != nil {
		out.Holders = make(map[string]SecretAccessHolder, len(s.Holders))
		for k, h := range s.Holders {
			out.Holders[k] = h
		}
	}
	return out
}

// loadLedger returns devhub's ledger state: on a loop's first try the one
// this engine last saw (when it has one), else a fresh read.
func (e *Engine) loadLedger(ctx context.Context, devhub string, try int) (SecretAccessState, int, error) {
	if try == 0 {
		if s, v, ok := e.ledgerMemo.get(devhub); ok {
			return s, v, nil
		}
	}
	s, v, err := e.ledger.LoadSecretAccess(ctx, devhub)
	if err != nil {
		e.ledgerMemo.forget(devhub)
		return SecretAccessState{}, 0, err
	}
	e.ledgerMemo.put(devhub, s, v)
	return s, v, nil
}

// saveLedger writes s against version v and remembers the result; a lost
// check-and-set forgets the remembered state.
func (e *Engine) saveLedger(ctx context.Context, devhub string, s SecretAccessState, v int) (int, error) {
	nv, err := e.ledger.SaveSecretAccess(ctx, devhub, s, v)
	if err != nil {
		e.ledgerMemo.forget(devhub)
		return 0, err
	}
	e.ledgerMemo.put(devhub, s, nv)
	return nv, nil
}

// SecretAccessHolders lists the apps holding devhub's opening (for status and
// tests), sorted; dead holders are included until the next join or leave.
func (e *Engine) SecretAccessHolders(ctx context.Context, devhub string) ([]string, error) {
	s, _, err := e.ledger.LoadSecretAccess(ctx, devhub)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(s.Holders))
	for app := range s.Holders {
		out = append(out, app)
	}
	sort.Strings(out)
	return out, nil
}
