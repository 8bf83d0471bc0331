package sfsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// minVersion is the first API version of each Connect REST route, as
// documented (usage v59.0, credentials v60.0, staged credentials v65.0).
var minVersion = map[string]float64{
	RouteUsage:       59.0,
	RouteCredentials: 60.0,
	RouteConsumer:    60.0,
	RouteStaged:      65.0,
	RouteStagedItem:  65.0,
	RouteVersion:     oldestVersion,
	RouteLimits:      29.0,
	RouteQuery:       oldestVersion,
}

// sfTime formats a time like other Connect REST dates.
func sfTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func itoa(n int) string { return strconv.Itoa(n) }

// limitHeader rolls the org's API usage over to the current sim-day, counts
// one call when count is set, and sets Sforce-Limit-Info. It reports whether
// the call is over the limit.
func (s *Sim) limitHeader(w http.ResponseWriter, name string, count bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.org(name)
	if o == nil {
		return false
	}
	return s.limitHeaderLocked(w, o, count)
}

func (s *Sim) limitHeaderLocked(w http.ResponseWriter, o *org, count bool) bool {
	day := simDay(s.nowLocked())
	if !o.UsageDay.Equal(day) {
		o.UsageDay, o.Usage = day, 0
	}
	if count {
		o.Usage++
	}
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", o.Usage, o.APILimit))
	return o.Usage > o.APILimit
}

// serveREST implements the Connect REST resources under /services/data.
func (s *Sim) serveREST(w *respWriter, r *http.Request, host string, rt route) {
	if host == LoginHost {
		writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	if rt.name == RouteVersions {
		s.serveVersions(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.org(host)
	if o == nil {
		writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	v, err := strconv.ParseFloat(rt.version, 64)
	if err != nil || !strings.Contains(rt.version, ".") || v < minVersion[rt.name] || v > s.behavior.MaxAPIVersion {
		s.limitHeaderLocked(w, o, false)
		writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	now := s.nowLocked()
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sess, valid := s.sessionLocked(strings.TrimSpace(tok), o.Name, now)
	u := o.userByID(sess.userID)
	if !ok || !valid || u == nil {
		s.limitHeaderLocked(w, o, false)
		writeRESTError(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
		return
	}
	if s.limitHeaderLocked(w, o, true) {
		writeRESTError(w, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
		return
	}
	if !u.has(PermAPIEnabled) {
		writeRESTError(w, http.StatusForbidden, "API_DISABLED_FOR_ORG", "API is not enabled for this Organization or Partner")
		return
	}
	allowed := "GET"
	switch rt.name {
	case RouteStaged:
		allowed = "GET,POST"
	case RouteStagedItem:
		allowed = "GET,PATCH,DELETE"
	}
	if !strings.Contains(","+allowed+",", ","+r.Method+",") {
		writeRESTError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED",
			fmt.Sprintf("HTTP Method '%s' not allowed. Allowed are %s", r.Method, allowed))
		return
	}
	switch rt.name {
	case RouteVersion:
		s.versionResources(w, rt)
		return
	case RouteLimits:
		s.limitsLocked(w, o)
		return
	case RouteQuery:
		s.queryLocked(w, r, o, rt.version)
		return
	}
	// The secret-access setting gates these reads too unless ReadsUngated.
	gateReads := !s.behavior.ReadsUngated && !o.SecretAccess
	if rt.name == RouteUsage {
		if gateReads {
			b := s.behavior
			writeRESTError(w, b.SecretAccessStatus, b.SecretAccessCode, b.SecretAccessMessage)
			return
		}
		s.usageLocked(w, r, o, rt, now)
		return
	}
	if !u.has(PermExternalClientAppDeveloper) {
		writeRESTError(w, http.StatusForbidden, "INSUFFICIENT_ACCESS", "You don't have permission to manage external client app credentials.")
		return
	}
	e := o.ownECA(rt.app)
	if e == nil || e.ID != rt.app {
		writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	if gateReads {
		b := s.behavior
		writeRESTError(w, b.SecretAccessStatus, b.SecretAccessCode, b.SecretAccessMessage)
		return
	}
	// live: the setting is on and has applied; before that, 200s carry no
	// secret.
	live := o.SecretAccess && !now.Before(o.SecretAccessSince.Add(time.Duration(s.behavior.SettingDelay)))
	if rt.name == RouteCredentials {
		s.credentialsLocked(w, o, u, e, rt, live)
		return
	}
	c := e.consumer(rt.consumer)
	if c == nil {
		writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	c.lapse(now)
	part := "key"
	if rt.name == RouteConsumer {
		part = strings.ToLower(r.URL.Query().Get("part"))
		if part == "" {
			part = "key"
		}
		if part != "key" && part != "secret" && part != "keyandsecret" {
			writeRESTError(w, http.StatusBadRequest, "INVALID_INPUT", "Invalid value for part: expected key, secret or keyandsecret")
			return
		}
	}
	// Staged routes always carry secrets; the consumer route only when asked.
	if rt.name != RouteConsumer || part != "key" {
		if !u.has(PermViewClientSecret) {
			writeRESTError(w, http.StatusForbidden, "INSUFFICIENT_ACCESS", "You don't have permission to view external client app consumer secrets.")
			return
		}
		if !o.SecretAccess {
			b := s.behavior
			writeRESTError(w, b.SecretAccessStatus, b.SecretAccessCode, b.SecretAccessMessage)
			return
		}
	}
	if s.refusePackagedLocked(w, e, rt, part) { // mdapi.go
		return
	}
	switch rt.name {
	case RouteConsumer:
		writeJSON(w, http.StatusOK, consumerJSON(c, e, rt.version, part != "key" && live, part != "secret"))
	case RouteStaged:
		s.stagedLocked(w, r, u, e, c, rt, now, live)
	case RouteStagedItem:
		s.stagedItemLocked(w, r, u, e, c, rt, now, live)
	}
}

// usageApp is one item of the App OAuth Usage Collection.
type usageApp struct {
	Identifier    string `json:"identifier"`
	DeveloperName string `json:"developerName"`
	Label         string `json:"label"`
}

// usageLocked implements GET /apps/oauth/usage?page&pageSize. nextPageUrl is
// returned on every page; a page past the end has an empty apps array.
func (s *Sim) usageLocked(w http.ResponseWriter, r *http.Request, o *org, rt route, now time.Time) {
	q := r.URL.Query()
	page, pageSize := 0, 100
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeRESTError(w, http.StatusBadRequest, "INVALID_INPUT", "Invalid page: "+v)
			return
		}
		page = n
	}
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeRESTError(w, http.StatusBadRequest, "INVALID_INPUT", "Page size must be between 1 and 100: "+v)
			return
		}
		pageSize = n
	}
	all := []usageApp{}
	for _, a := range s.ecasIn(o) {
		if !s.behavior.UsageListsAll && !s.activeTokenLocked(o, a.eca, now) {
			// Strict: only apps "that have OAuth usage data".
			continue
		}
		all = append(all, usageApp{Identifier: a.eca.ID, DeveloperName: a.eca.DeveloperName, Label: a.eca.Label})
	}
	start := min(page*pageSize, len(all))
	end := min(start+pageSize, len(all))
	base := dataPrefix + "v" + rt.version + "/apps/oauth/usage"
	writeJSON(w, http.StatusOK, map[string]any{
		"apps":           all[start:end],
		"currentPageUrl": fmt.Sprintf("%s?page=%d&pageSize=%d", base, page, pageSize),
		"nextPageUrl":    fmt.Sprintf("%s?page=%d&pageSize=%d", base, page+1, pageSize),
	})
}

// credsJSON is the "App Oauth Credentials" object.
type credsJSON struct {
	ID                   string  `json:"id"`
	Key                  *string `json:"key"`
	Name                 string  `json:"name"`
	Secret               *string `json:"secret"`
	URL                  string  `json:"url"`
	StagedCredentialsURL string  `json:"stagedCredentialsUrl"`
}

// consumerURL is the consumer's primary credentials URL for a version.
func consumerURL(e *eca, c *consumer, version string) string {
	return dataPrefix + "v" + version + "/apps/oauth/credentials/" + e.ID + "/" + c.ID
}

func consumerJSON(c *consumer, e *eca, version string, withSecret, withKey bool) credsJSON {
	out := credsJSON{ID: c.ID, Name: c.Name, URL: consumerURL(e, c, version),
		StagedCredentialsURL: consumerURL(e, c, version) + "/staged"}
	if withKey {
		k := c.Key
		out.Key = &k
	}
	if withSecret {
		sec := c.Secret
		out.Secret = &sec
	}
	return out
}

// credentialsLocked implements GET /apps/oauth/credentials/{app}.
func (s *Sim) credentialsLocked(w http.ResponseWriter, o *org, u *UserConfig, e *eca, rt route, live bool) {
	secrets := s.behavior.CollectionIncludesSecrets && live && u.has(PermViewClientSecret)
	items := []credsJSON{}
	for _, c := range e.Consumers {
		items = append(items, consumerJSON(c, e, rt.version, secrets, true))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"consumers":      items,
		"currentPageUrl": dataPrefix + "v" + rt.version + "/apps/oauth/credentials/" + e.ID,
		"nextPageUrl":    nil,
	})
}

// stagedJSON is the "App Oauth Staged Credentials" object.
type stagedJSON struct {
	CreatedBy            string `json:"createdBy"`
	CreatedDate          string `json:"createdDate"`
	ExpirationDate       string `json:"expirationDate"`
	ID                   string `json:"id"`
	Key                  string `json:"key"`
	Secret               string `json:"secret"`
	StagedCredentialsURL string `json:"stagedCredentialsUrl"`
	State                string `json:"state"`
	URL                  string `json:"url"`
}

func (s *Sim) stagedObj(e *eca, c *consumer, st *stagedCred, version string, live bool) stagedJSON {
	item := consumerURL(e, c, version) + "/staged/" + st.ID
	out := stagedJSON{
		CreatedBy: st.CreatedBy, CreatedDate: sfTime(st.Created), ExpirationDate: sfTime(st.Expires),
		ID: st.ID, Key: st.Key, Secret: st.Secret, StagedCredentialsURL: item, State: st.State,
		URL: consumerURL(e, c, version),
	}
	if !live {
		out.Secret = ""
	}
	if s.behavior.StagedURLIsItem {
		out.URL = item
	}
	return out
}

// stagedLocked implements GET and POST …/staged.
func (s *Sim) stagedLocked(w *respWriter, r *http.Request, u *UserConfig, e *eca, c *consumer, rt route, now time.Time, live bool) {
	coll := consumerURL(e, c, rt.version) + "/staged"
	if r.Method == http.MethodGet {
		if c.Slot == nil {
			if s.behavior.EmptyStagedNotFound {
				writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"stagedCredentials": []stagedJSON{}, "url": coll})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"stagedCredentials": []stagedJSON{s.stagedObj(e, c, c.Slot, rt.version, live)}, "url": coll})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeRESTError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "Could not read the request body")
		return
	}
	if len(body) == 0 && w.resetEmpty {
		// The opt-in fault: one report says Salesforce hangs and resets
		// the socket on a body-less POST.
		w.abort()
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 && !json.Valid(body) {
		writeRESTError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "Unexpected character in the request body")
		return
	}
	if c.Slot != nil {
		b := s.behavior
		writeRESTError(w, b.OccupiedSlotStatus, b.OccupiedSlotCode, b.OccupiedSlotMessage)
		return
	}
	c.Slot = &stagedCred{
		ID: s.ids.id("0Ss", 18), State: StateActive, Key: s.ids.key(), Secret: s.ids.secret(),
		CreatedBy: u.UserID, Created: now, Expires: now.Add(time.Duration(s.behavior.StagedValidity)),
	}
	s.saveLocked()
	writeJSON(w, http.StatusCreated, map[string]any{"stagedCredentials": []stagedJSON{s.stagedObj(e, c, c.Slot, rt.version, live)}, "url": coll})
}

// stagedItemLocked implements GET, PATCH (rotate) and DELETE …/staged/{id}.
func (s *Sim) stagedItemLocked(w http.ResponseWriter, r *http.Request, u *UserConfig, e *eca, c *consumer, rt route, now time.Time, live bool) {
	st := c.Slot
	if st == nil || st.ID != rt.staged {
		writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.stagedObj(e, c, st, rt.version, live))
	case http.MethodDelete:
		// The pair in the slot (staged or previous) stops working at once.
		c.Slot = nil
		s.saveLocked()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPatch:
		var in struct {
			Command string `json:"command"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
			writeRESTError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "Could not parse the request body")
			return
		}
		if in.Command != "rotate" {
			writeRESTError(w, http.StatusBadRequest, "INVALID_INPUT", fmt.Sprintf("Invalid command: %q", in.Command))
			return
		}
		if st.State != StateActive {
			writeRESTError(w, http.StatusBadRequest, "INVALID_INPUT",
				fmt.Sprintf("Only Active staged credentials can be rotated; these are %s.", st.State))
			return
		}
		// The previous pair moves into the slot under a new id and stays
		// valid for RotatedValidity.
		prev := &stagedCred{
			ID: s.ids.id("0Ss", 18), State: StateRotated, Key: c.Key, Secret: c.Secret,
			CreatedBy: u.UserID, Created: now, Expires: now.Add(time.Duration(s.behavior.RotatedValidity)),
		}
		c.Key, c.Secret, c.Since = st.Key, st.Secret, now
		c.Slot = prev
		s.saveLocked()
		if s.behavior.PatchOmitsRotated {
			writeJSON(w, http.StatusOK, s.stagedObj(e, c, st, rt.version, live))
			return
		}
		writeJSON(w, http.StatusOK, s.stagedObj(e, c, prev, rt.version, live))
	}
}
