package sfsim

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// oldestVersion is the oldest REST API version still served: versions
// 21.0–30.0 were retired in Summer '25.
const oldestVersion = 31.0

// releaseName is the Salesforce release of an API version: v59.0 is
// Winter '24, and every version is the next of Winter, Spring, Summer.
func releaseName(v int) string {
	idx := v - 59
	season := [...]string{"Winter", "Spring", "Summer"}[((idx%3)+3)%3]
	year := 24 + int(math.Floor(float64(idx)/3))
	return fmt.Sprintf("%s '%02d", season, year)
}

// serveVersions implements GET /services/data/: no authentication and no
// Sforce-Limit-Info (the one REST resource without it), a JSON array of
// {label, url, version} oldest first, label being the release name.
func (s *Sim) serveVersions(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	maxV := s.behavior.MaxAPIVersion
	s.mu.Unlock()
	type version struct {
		Label   string `json:"label"`
		URL     string `json:"url"`
		Version string `json:"version"`
	}
	out := []version{}
	for v := oldestVersion; v <= maxV; v++ {
		vs := strconv.FormatFloat(v, 'f', 1, 64)
		out = append(out, version{Label: releaseName(int(v)), URL: dataPrefix + "v" + vs, Version: vs})
	}
	writeJSON(w, http.StatusOK, out)
}

// versionResources implements GET /services/data/vXX.X/: the resources of
// that version, each a relative URL.
func (s *Sim) versionResources(w http.ResponseWriter, rt route) {
	base := dataPrefix + "v" + rt.version + "/"
	out := map[string]string{}
	for _, name := range []string{"tooling", "metadata", "eclair", "folders", "prechatForms", "contact-tracing", "chatter",
		"tabs", "appMenu", "quickActions", "queryAll", "commerce", "wave", "iot", "analytics", "search", "identity",
		"composite", "parameterizedSearch", "fingerprint", "theme", "nouns", "domino", "event", "serviceTemplates",
		"recent", "connect", "licensing", "limits", "process", "async-queries", "query", "jsonxform", "match",
		"emailConnect", "compactLayouts", "knowledgeManagement", "sobjects", "actions", "support", "apps"} {
		out[name] = base + name
	}
	writeJSON(w, http.StatusOK, out)
}

// limitsLocked implements GET /services/data/vXX.X/limits: the daily API
// request budget and a few other limits.
func (s *Sim) limitsLocked(w http.ResponseWriter, o *org) {
	type limit struct {
		Max       int `json:"Max"`
		Remaining int `json:"Remaining"`
	}
	writeJSON(w, http.StatusOK, map[string]limit{
		"DailyApiRequests":         {Max: o.APILimit, Remaining: max(o.APILimit-o.Usage, 0)},
		"DailyAsyncApexExecutions": {Max: 250000, Remaining: 250000},
		"DataStorageMB":            {Max: 5, Remaining: 5},
		"FileStorageMB":            {Max: 20, Remaining: 20},
	})
}

// activeTokenLocked reports whether an unexpired access token issued
// through e exists in o ("OAuth usage data"); s.mu must be held.
func (s *Sim) activeTokenLocked(o *org, e *eca, now time.Time) bool {
	for _, t := range s.tokens {
		if t.eca == e && t.org == o.Name && now.Before(t.expires) {
			return true
		}
	}
	return false
}

// serveIdentity implements the userinfo endpoint and the identity URL (the
// token response's "id"). An unknown or expired token is 403
// Bad_OAuth_Token, as Salesforce answers; the identity URL of another
// user is 403 too.
func (s *Sim) serveIdentity(w http.ResponseWriter, r *http.Request, rt route) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tok = strings.TrimSpace(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	sess, ok := s.tokens[tok]
	var o *org
	var u *UserConfig
	if ok && now.Before(sess.expires) {
		o = s.org(sess.org)
		if o != nil {
			u = o.userByID(sess.userID)
		}
	}
	if u == nil || (rt.name == RouteIdentity && (rt.app != o.OrgID || rt.consumer != u.UserID)) {
		w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("Bad_OAuth_Token"))
		return
	}
	id := s.loginURLLocked() + "/id/" + o.OrgID + "/" + u.UserID
	inst := s.orgURLLocked(o.Name)
	if rt.name == RouteUserInfo {
		writeJSON(w, http.StatusOK, map[string]any{
			"sub": id, "user_id": u.UserID, "organization_id": o.OrgID, "preferred_username": u.Username,
			"nickname": strings.Split(u.Username, "@")[0], "name": u.Username, "email": u.Username,
			"email_verified": true, "zoneinfo": "GMT", "locale": "en_US", "language": "en_US",
			"user_type": "STANDARD", "active": true, "is_app_installed": true, "updated_at": sfTime(now),
			"urls": identityURLs(inst),
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "asserted_user": true, "user_id": u.UserID, "organization_id": o.OrgID,
		"username": u.Username, "nick_name": strings.Split(u.Username, "@")[0], "display_name": u.Username,
		"email": u.Username, "email_verified": true, "active": true, "user_type": "STANDARD",
		"language": "en_US", "locale": "en_US", "utcOffset": 0, "last_modified_date": sfTime(now),
		"is_app_installed": true, "urls": identityURLs(inst),
	})
}

// identityURLs are the "urls" of an identity response; "{version}" is
// literal, as Salesforce sends it.
func identityURLs(inst string) map[string]string {
	d := inst + "/services/data/v{version}/"
	return map[string]string{
		"enterprise": inst + "/services/Soap/c/{version}/", "metadata": inst + "/services/Soap/m/{version}/",
		"partner": inst + "/services/Soap/u/{version}/", "rest": d, "sobjects": d + "sobjects/",
		"search": d + "search/", "query": d + "query/", "recent": d + "recent/",
		"tooling_soap": inst + "/services/Soap/T/{version}/", "tooling_rest": d + "tooling/",
		"profile": inst + "/", "custom_domain": inst,
	}
}

// soql is the subset of SOQL the simulator answers: SELECT fields FROM
// object [WHERE field = 'value' [AND …]] [LIMIT n].
var (
	soqlRE  = regexp.MustCompile(`(?is)^\s*SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?(?:\s+LIMIT\s+(\d+))?\s*$`)
	condRE  = regexp.MustCompile(`(?is)^\s*([\w.]+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*$`)
	andRE   = regexp.MustCompile(`(?i)\s+AND\s+`)
	fieldRE = regexp.MustCompile(`^[A-Za-z][\w]*(\.[A-Za-z][\w]*)?$`)
)

// permissionField maps a simulated permission to the PermissionSet field
// doctor reads (PermissionSet.Permissions<Name>).
func permissionField(perm string) string { return "Permissions" + perm }

// AllPermissions lists the permissions the simulator knows, in the order
// doctor reports them.
var AllPermissions = []string{PermAPIEnabled, PermExternalClientAppDeveloper, PermViewClientSecret, PermModifyMetadata, PermViewSecretsInMetadata}

// queryLocked implements GET /services/data/vXX.X/query?q=… for
// ExternalClientApplication, User and PermissionSetAssignment.
func (s *Sim) queryLocked(w http.ResponseWriter, r *http.Request, o *org, version string) {
	q := r.URL.Query().Get("q")
	m := soqlRE.FindStringSubmatch(q)
	if m == nil || len(q) > 4000 {
		writeRESTError(w, http.StatusBadRequest, "MALFORMED_QUERY", "unexpected token in the query (the simulator supports SELECT … FROM … WHERE a = 'x' AND … LIMIT n)")
		return
	}
	var fields []string
	for _, f := range strings.Split(m[1], ",") {
		f = strings.TrimSpace(f)
		if !fieldRE.MatchString(f) {
			writeRESTError(w, http.StatusBadRequest, "MALFORMED_QUERY", "unexpected token: "+strconv.Quote(f))
			return
		}
		fields = append(fields, f)
	}
	where := map[string]string{}
	if m[3] != "" {
		for _, c := range andRE.Split(m[3], -1) {
			cm := condRE.FindStringSubmatch(c)
			if cm == nil {
				writeRESTError(w, http.StatusBadRequest, "MALFORMED_QUERY", "unsupported condition: "+strconv.Quote(strings.TrimSpace(c)))
				return
			}
			where[strings.ToLower(cm[1])] = strings.ReplaceAll(cm[2], `\'`, `'`)
		}
	}
	limit := -1
	if m[4] != "" {
		limit, _ = strconv.Atoi(m[4])
	}
	object := m[2]
	var rows []map[string]any // lower-case field → value
	switch strings.ToLower(object) {
	case "externalclientapplication":
		object = "ExternalClientApplication"
		for _, e := range o.ECAs {
			rows = append(rows, map[string]any{"id": e.ID, "developername": e.DeveloperName, "masterlabel": e.Label,
				"distributionstate": e.DistributionState, "namespaceprefix": nil})
		}
	case "user":
		object = "User"
		for _, u := range o.Users {
			rows = append(rows, map[string]any{"id": u.UserID, "username": u.Username, "name": u.Username, "isactive": true, "usertype": "Standard"})
		}
	case "permissionsetassignment":
		object = "PermissionSetAssignment"
		for _, u := range o.Users {
			ps := map[string]any{"attributes": map[string]string{"type": "PermissionSet"}, "Name": "sfsim_" + strings.Split(u.Username, "@")[0], "Id": "0PS" + u.UserID[3:]}
			row := map[string]any{"id": "0Pa" + u.UserID[3:], "assigneeid": u.UserID, "permissionsetid": ps["Id"], "permissionset.name": ps["Name"]}
			for _, p := range AllPermissions {
				row["permissionset."+strings.ToLower(permissionField(p))] = u.has(p)
			}
			rows = append(rows, row)
		}
	default:
		writeRESTError(w, http.StatusBadRequest, "INVALID_TYPE", fmt.Sprintf("sObject type '%s' is not supported.", object))
		return
	}
	for _, f := range append(fields, whereKeys(where)...) {
		if len(rows) == 0 {
			break
		}
		if _, ok := rows[0][strings.ToLower(f)]; !ok {
			writeRESTError(w, http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("No such column '%s' on entity '%s'.", f, object))
			return
		}
	}
	records := []map[string]any{}
	for _, row := range rows {
		match := true
		for k, v := range where {
			if fmt.Sprint(row[k]) != v {
				match = false
			}
		}
		if !match {
			continue
		}
		if limit >= 0 && len(records) >= limit {
			break
		}
		rec := map[string]any{"attributes": map[string]string{"type": object, "url": fmt.Sprintf("%sv%s/sobjects/%s/%v", dataPrefix, version, object, row["id"])}}
		for _, f := range fields {
			head, tail, nested := strings.Cut(f, ".")
			if !nested {
				rec[f] = row[strings.ToLower(f)]
				continue
			}
			sub, _ := rec[head].(map[string]any)
			if sub == nil {
				sub = map[string]any{"attributes": map[string]string{"type": head}}
				rec[head] = sub
			}
			sub[tail] = row[strings.ToLower(f)]
		}
		records = append(records, rec)
	}
	writeJSON(w, http.StatusOK, map[string]any{"totalSize": len(records), "done": true, "records": records})
}

func whereKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
