package sfsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateVersion is the state file format version.
const stateVersion = 1

// stateFile is the persisted model. It holds secrets, so it is written 0600.
type stateFile struct {
	Version     int           `json:"version"`
	ClockOffset time.Duration `json:"clockOffset"`
	Orgs        []*org        `json:"orgs"`
}

// loadState replaces the model with the state file's, if the file exists.
func (s *Sim) loadState() error {
	b, err := os.ReadFile(s.stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.saveErrLocked()
	}
	if err != nil {
		return fmt.Errorf("sfsim: read state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("sfsim: read state %s: %w", s.stateFile, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("sfsim: read state %s: unsupported version %d", s.stateFile, st.Version)
	}
	for _, o := range st.Orgs {
		if o == nil {
			return fmt.Errorf("sfsim: read state %s: null org", s.stateFile)
		}
		for _, e := range o.ECAs {
			if e == nil {
				return fmt.Errorf("sfsim: read state %s: null ECA in org %s", s.stateFile, o.Name)
			}
			if err := e.init(); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgs = st.Orgs
	s.offset = st.ClockOffset
	return nil
}

// saveLocked writes the state file, if configured. A write failure is not a
// request failure; Save reports it.
func (s *Sim) saveLocked() {
	_ = s.saveErrLocked()
}

// saveErrLocked writes the state file atomically (temp file + rename).
func (s *Sim) saveErrLocked() error {
	if s.stateFile == "" {
		return nil
	}
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, ClockOffset: s.offset, Orgs: s.orgs}, "", "  ")
	if err != nil {
		return fmt.Errorf("sfsim: write state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.stateFile), ".sfsim-state-*")
	if err != nil {
		return fmt.Errorf("sfsim: write state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("sfsim: write state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sfsim: write state: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("sfsim: write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.stateFile); err != nil {
		return fmt.Errorf("sfsim: write state: %w", err)
	}
	return nil
}

// Save writes the state file now (a no-op without one).
func (s *Sim) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveErrLocked()
}
