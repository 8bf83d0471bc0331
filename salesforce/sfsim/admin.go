package sfsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The admin API is served under /__sfsim/ on every host. It is not part of
// Salesforce's surface and is never logged in the request log.
//
//	GET    /__sfsim/state[?reveal=1]        model snapshot (secrets only with reveal=1)
//	PUT    /__sfsim/model                   replace the model with a Config (JSON)
//	GET    /__sfsim/faults                  armed faults
//	PUT    /__sfsim/faults                  replace faults ([]Fault JSON)
//	POST   /__sfsim/faults                  add faults ([]Fault JSON)
//	GET    /__sfsim/requests                request log
//	DELETE /__sfsim/requests                empty the request log
//	GET    /__sfsim/clock                   {"now": …}
//	POST   /__sfsim/clock                   {"advance":"24h"}
//	GET    /__sfsim/behavior                behaviour switches in force
//	PUT    /__sfsim/behavior                replace behaviour switches (Behavior JSON)
//	PUT    /__sfsim/propagation             {"delay":"5m"} or {"org":"x","delay":"5m"}
//	PUT    /__sfsim/orgs/{org}/secret-access {"enabled":true}
//	PUT    /__sfsim/orgs/{org}/api-limit    {"limit":1000}

// AdminState is the body of GET /__sfsim/state.
type AdminState struct {
	Now      time.Time  `json:"now"`
	LoginURL string     `json:"loginUrl"`
	Orgs     []AdminOrg `json:"orgs"`
}

// AdminOrg is one org in AdminState.
type AdminOrg struct {
	Name         string       `json:"name"`
	OrgID        string       `json:"orgId"`
	DevHub       bool         `json:"devHub"`
	URL          string       `json:"url"`
	TokenURL     string       `json:"tokenUrl"`
	SecretAccess bool         `json:"secretAccess"`
	APIUsage     int          `json:"apiUsage"`
	APILimit     int          `json:"apiLimit"`
	Users        []UserConfig `json:"users"`
	Installs     []string     `json:"installs,omitempty"`
	ECAs         []AdminECA   `json:"ecas,omitempty"`
}

// AdminECA is one ECA in AdminOrg.
type AdminECA struct {
	DeveloperName string          `json:"developerName"`
	Label         string          `json:"label"`
	ID            string          `json:"id"`
	Consumers     []ConsumerState `json:"consumers"`
}

// State returns a snapshot of the model; secrets are included only when
// reveal is set.
func (s *Sim) State(reveal bool) AdminState {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	st := AdminState{Now: now, LoginURL: s.loginURLLocked(), Orgs: []AdminOrg{}}
	for _, o := range s.orgs {
		ao := AdminOrg{
			Name: o.Name, OrgID: o.OrgID, DevHub: o.DevHub, URL: s.orgURLLocked(o.Name),
			TokenURL: s.orgURLLocked(o.Name) + tokenPath, SecretAccess: o.SecretAccess,
			APILimit: o.APILimit, Users: o.Users, Installs: o.Installs,
		}
		if o.UsageDay.Equal(simDay(now)) {
			ao.APIUsage = o.Usage
		}
		for _, e := range o.ECAs {
			ae := AdminECA{DeveloperName: e.DeveloperName, Label: e.Label, ID: e.ID, Consumers: []ConsumerState{}}
			for _, c := range e.Consumers {
				c.lapse(now)
				ae.Consumers = append(ae.Consumers, c.snapshot(reveal))
			}
			ao.ECAs = append(ao.ECAs, ae)
		}
		st.Orgs = append(st.Orgs, ao)
	}
	return st
}

// adminError answers an admin request error.
func adminError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// decodeAdmin decodes a strict JSON admin body.
func decodeAdmin(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

// serveAdmin implements the admin API.
func (s *Sim) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, adminPrefix)
	method := r.Method
	switch {
	case path == "state" && method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.State(r.URL.Query().Get("reveal") == "1"))
	case path == "model" && method == http.MethodPut:
		var cfg Config
		if err := decodeAdmin(r, &cfg); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		if err := s.Seed(cfg); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, s.State(false))
	case path == "faults" && method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Faults())
	case path == "faults" && (method == http.MethodPut || method == http.MethodPost):
		var fs []Fault
		if err := decodeAdmin(r, &fs); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		if err := errors.Join(validateFaults("faults", fs)...); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		if method == http.MethodPost {
			s.mu.Lock()
			s.faults = append(s.faults, newFaults(fs)...)
			s.mu.Unlock()
		} else {
			s.SetFaults(fs)
		}
		writeJSON(w, http.StatusOK, s.Faults())
	case path == "requests" && method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Requests())
	case path == "requests" && method == http.MethodDelete:
		s.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	case path == "clock" && (method == http.MethodGet || method == http.MethodPost):
		if method == http.MethodPost {
			var in struct {
				Advance Duration `json:"advance"`
			}
			if err := decodeAdmin(r, &in); err != nil {
				adminError(w, http.StatusBadRequest, err)
				return
			}
			if in.Advance < 0 {
				adminError(w, http.StatusBadRequest, errors.New("advance: the sim clock only moves forward"))
				return
			}
			s.Advance(time.Duration(in.Advance))
		}
		writeJSON(w, http.StatusOK, map[string]time.Time{"now": s.Now()})
	case path == "behavior" && method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Behavior())
	case path == "behavior" && method == http.MethodPut:
		var b Behavior
		if err := decodeAdmin(r, &b); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		if err := (Config{Orgs: []OrgConfig{{Name: "x"}}, Behavior: b}).Validate(); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		s.SetBehavior(b)
		writeJSON(w, http.StatusOK, s.Behavior())
	case path == "propagation" && method == http.MethodPut:
		var in struct {
			Org   string   `json:"org"`
			Delay Duration `json:"delay"`
		}
		if err := decodeAdmin(r, &in); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		if in.Org == "" {
			s.SetPropagationDelay(time.Duration(in.Delay))
		} else if !s.hasOrg(in.Org) {
			adminError(w, http.StatusNotFound, fmt.Errorf("org %q: %w", in.Org, ErrNotFound))
			return
		} else {
			s.SetOrgPropagationDelay(in.Org, time.Duration(in.Delay))
		}
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(path, "orgs/") && method == http.MethodPut:
		s.adminOrg(w, r, strings.TrimPrefix(path, "orgs/"))
	default:
		adminError(w, http.StatusNotFound, fmt.Errorf("no admin route %s %s", method, r.URL.Path))
	}
}

// hasOrg reports whether an org exists.
func (s *Sim) hasOrg(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.org(name) != nil
}

// adminOrg implements PUT /__sfsim/orgs/{org}/{setting}.
func (s *Sim) adminOrg(w http.ResponseWriter, r *http.Request, rest string) {
	name, setting, _ := strings.Cut(rest, "/")
	if !s.hasOrg(name) {
		adminError(w, http.StatusNotFound, fmt.Errorf("org %q: %w", name, ErrNotFound))
		return
	}
	switch setting {
	case "secret-access":
		var in struct {
			Enabled bool `json:"enabled"`
		}
		if err := decodeAdmin(r, &in); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		s.SetSecretAccess(name, in.Enabled)
	case "api-limit":
		var in struct {
			Limit int `json:"limit"`
		}
		if err := decodeAdmin(r, &in); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		s.SetAPILimit(name, in.Limit)
	default:
		adminError(w, http.StatusNotFound, fmt.Errorf("no org setting %q", setting))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
