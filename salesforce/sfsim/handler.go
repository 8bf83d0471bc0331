package sfsim

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"
)

// Route names, used in the request log and to match faults. A Fault.Route may
// also be given as the template from Routes.
const (
	RouteToken       = "token"
	RouteRevoke      = "revoke"
	RouteVersions    = "versions"
	RouteUsage       = "usage"
	RouteCredentials = "credentials"
	RouteConsumer    = "consumer"
	RouteStaged      = "staged"
	RouteStagedItem  = "staged-item"
	RouteSOAP        = "soap"
	RouteOther       = "other"
	// Endpoints real clients call first (discovery; doctor uses them).
	RouteVersion  = "version"  // GET /services/data/vXX.X/ (resources)
	RouteLimits   = "limits"   // GET /services/data/vXX.X/limits
	RouteQuery    = "query"    // GET /services/data/vXX.X/query?q=
	RouteUserInfo = "userinfo" // GET /services/oauth2/userinfo
	RouteIdentity = "identity" // GET /id/{orgId}/{userId}
)

// Routes maps each route name to its path template.
var Routes = map[string]string{
	RouteToken:       "/services/oauth2/token",
	RouteRevoke:      "/services/oauth2/revoke",
	RouteVersions:    "/services/data/",
	RouteUsage:       "/services/data/{version}/apps/oauth/usage",
	RouteCredentials: "/services/data/{version}/apps/oauth/credentials/{app}",
	RouteConsumer:    "/services/data/{version}/apps/oauth/credentials/{app}/{consumer}",
	RouteStaged:      "/services/data/{version}/apps/oauth/credentials/{app}/{consumer}/staged",
	RouteStagedItem:  "/services/data/{version}/apps/oauth/credentials/{app}/{consumer}/staged/{id}",
	RouteSOAP:        "/services/Soap/m/{version}",
	RouteOther:       "",
	RouteVersion:     "/services/data/{version}/",
	RouteLimits:      "/services/data/{version}/limits",
	RouteQuery:       "/services/data/{version}/query",
	RouteUserInfo:    "/services/oauth2/userinfo",
	RouteIdentity:    "/id/{orgId}/{userId}",
}

const (
	tokenPath    = "/services/oauth2/token"
	revokePath   = "/services/oauth2/revoke"
	userInfoPath = "/services/oauth2/userinfo"
	identityPath = "/id/"
	dataPrefix   = "/services/data/"
	soapPrefix   = "/services/Soap/m/"
	adminPrefix  = "/__sfsim/"
)

// routeByName returns the route name for a name or template, "" if unknown.
func routeByName(s string) string {
	if _, ok := Routes[s]; ok {
		return s
	}
	for name, tmpl := range Routes {
		if tmpl != "" && tmpl == s {
			return name
		}
	}
	return ""
}

// route is a classified request path.
type route struct {
	name     string
	version  string // "65.0"
	app      string
	consumer string
	staged   string
}

// classify maps a request path to its route and parameters.
func classify(path string) route {
	switch {
	case path == tokenPath:
		return route{name: RouteToken}
	case path == revokePath:
		return route{name: RouteRevoke}
	case path == userInfoPath:
		return route{name: RouteUserInfo}
	case strings.HasPrefix(path, identityPath):
		parts := strings.Split(strings.TrimPrefix(path, identityPath), "/")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return route{name: RouteOther}
		}
		return route{name: RouteIdentity, app: parts[0], consumer: parts[1]}
	case path == dataPrefix || path == strings.TrimSuffix(dataPrefix, "/"):
		return route{name: RouteVersions}
	case strings.HasPrefix(path, soapPrefix):
		v := strings.TrimPrefix(path, soapPrefix)
		if v == "" || strings.Contains(v, "/") {
			return route{name: RouteOther}
		}
		return route{name: RouteSOAP, version: v}
	case strings.HasPrefix(path, dataPrefix):
	default:
		return route{name: RouteOther}
	}
	parts := strings.Split(strings.TrimPrefix(path, dataPrefix), "/")
	v, ok := strings.CutPrefix(parts[0], "v")
	if ok && (len(parts) == 1 || (len(parts) == 2 && parts[1] == "")) {
		return route{name: RouteVersion, version: v}
	}
	if ok && (len(parts) == 2 || (len(parts) == 3 && parts[2] == "")) {
		switch parts[1] {
		case "limits":
			return route{name: RouteLimits, version: v}
		case "query":
			return route{name: RouteQuery, version: v}
		}
	}
	if !ok || len(parts) < 4 || parts[1] != "apps" || parts[2] != "oauth" {
		return route{name: RouteOther}
	}
	for _, p := range parts[3:] {
		if p == "" {
			return route{name: RouteOther}
		}
	}
	rest := parts[3:]
	switch {
	case len(rest) == 1 && rest[0] == "usage":
		return route{name: RouteUsage, version: v}
	case rest[0] != "credentials":
		return route{name: RouteOther}
	case len(rest) == 2:
		return route{name: RouteCredentials, version: v, app: rest[1]}
	case len(rest) == 3:
		return route{name: RouteConsumer, version: v, app: rest[1], consumer: rest[2]}
	case len(rest) == 4 && rest[3] == "staged":
		return route{name: RouteStaged, version: v, app: rest[1], consumer: rest[2]}
	case len(rest) == 5 && rest[3] == "staged":
		return route{name: RouteStagedItem, version: v, app: rest[1], consumer: rest[2], staged: rest[4]}
	}
	return route{name: RouteOther}
}

// Request is one entry of the request log. It never holds a secret, a token
// or a request body.
type Request struct {
	// Time is the sim clock when the request arrived.
	Time time.Time `json:"time"`
	// Org is the host the request reached (LoginHost for the login host).
	Org    string `json:"org"`
	Method string `json:"method"`
	// Route is the route name (see Routes); Path is the URL path without query.
	Route string `json:"route"`
	Path  string `json:"path"`
	// Status is the HTTP status the simulator produced; for "reset-after" it
	// is the status of the applied request the client never saw, and 0 for
	// "reset-before" and "reset-empty-body".
	Status int `json:"status"`
	// Fault is the fault applied ("" for none, a Fault* kind, or
	// "reset-empty-body" for a POST staged without a body).
	Fault string `json:"fault,omitempty"`
}

// Requests returns a copy of the request log, oldest first.
func (s *Sim) Requests() []Request {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return append([]Request(nil), s.log...)
}

// ResetRequests empties the request log.
func (s *Sim) ResetRequests() {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	s.log = nil
}

func (s *Sim) record(r Request) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if len(s.log) >= maxLog {
		// Drop the oldest tenth at once so appending stays amortised O(1).
		s.log = append(s.log[:0], s.log[maxLog/10:]...)
	}
	s.log = append(s.log, r)
}

// newFaults arms a fault list.
func newFaults(fs []Fault) []faultState {
	out := make([]faultState, len(fs))
	for i, f := range fs {
		out[i] = faultState{Fault: f, left: f.Count}
		if f.Count == 0 {
			out[i].left = -1
		}
	}
	return out
}

// SetFaults replaces the injected faults (counts restart). Invalid faults
// are ignored; use the admin API or Validate to see why.
func (s *Sim) SetFaults(f []Fault) {
	var ok []Fault
	for _, x := range f {
		if len(validateFaults("faults", []Fault{x})) == 0 {
			ok = append(ok, x)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = newFaults(ok)
}

// Faults returns the faults still armed, Count being what is left of it
// (0 = unlimited).
func (s *Sim) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Fault{}
	for _, f := range s.faults {
		if f.left == 0 {
			continue
		}
		x := f.Fault
		x.Count = max(f.left, 0)
		out = append(out, x)
	}
	return out
}

// takeFaults consumes the faults matching a request: the sum of matching
// latencies, and the kind of the first matching non-latency fault.
func (s *Sim) takeFaults(org, method, routeName string) (time.Duration, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lat time.Duration
	kind := ""
	for i := range s.faults {
		f := &s.faults[i]
		if f.left == 0 || !f.matches(org, method, routeName) {
			continue
		}
		if f.Kind == FaultLatency {
			lat += time.Duration(f.Latency)
		} else if kind == "" {
			kind = f.Kind
		} else {
			continue // a later terminal fault waits for its own request
		}
		if f.left > 0 {
			f.left--
		}
	}
	return lat, kind
}

func (f *faultState) matches(org, method, routeName string) bool {
	return (f.Org == "" || f.Org == org) &&
		(f.Method == "" || strings.EqualFold(f.Method, method)) &&
		(f.Route == "" || routeByName(f.Route) == routeName)
}

// hostHandler serves one host: LoginHost or an org's My Domain.
type hostHandler struct {
	s   *Sim
	org string
}

// Handler returns the http.Handler of one host, for in-process use:
// Handler(LoginHost) (or "") is the login host, Handler(name) an org's My
// Domain. The admin API is served under /__sfsim/ on every host. A
// connection reset is done by hijacking the connection; where that is not
// possible (e.g. httptest.ResponseRecorder) the handler panics with
// http.ErrAbortHandler, as net/http expects for an aborted response.
func (s *Sim) Handler(org string) http.Handler {
	if org == "" {
		org = LoginHost
	}
	return &hostHandler{s: s, org: org}
}

func (h *hostHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		s.serveAdmin(w, r)
		return
	}
	rt := classify(r.URL.Path)
	lat, kind := s.takeFaults(h.org, r.Method, rt.name)
	entry := Request{Time: s.Now(), Org: h.org, Method: r.Method, Route: rt.name, Path: r.URL.Path, Fault: kind}
	if lat > 0 {
		if entry.Fault == "" {
			entry.Fault = FaultLatency
		}
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.record(entry)
			return
		}
	}
	s.settleMD() // finish Metadata deploys that are due (mdapi.go)
	rw := &respWriter{w: w}
	if kind == FaultResetEmptyBody {
		// Armed for this request; it resets only a body-less POST staged.
		rw.resetEmpty, kind = true, ""
	}
	switch kind {
	case FaultResetBefore:
		s.record(entry)
		resetConn(w)
		return
	case FaultUnavailable:
		s.writeUnavailable(rw, h.org, rt)
	case FaultLimit:
		s.writeLimitFault(rw, h.org, rt)
	case FaultResetAfter:
		rw.discard = true
		h.serve(rw, r, rt)
		entry.Status = rw.status
		s.record(entry)
		resetConn(w)
		return
	default:
		h.serve(rw, r, rt)
	}
	if rw.reset {
		entry.Fault = FaultResetEmptyBody
		s.record(entry)
		resetConn(w)
		return
	}
	entry.Status = rw.status
	if entry.Status == 0 {
		entry.Status = http.StatusOK
	}
	s.record(entry)
}

// serve dispatches to the route's implementation.
func (h *hostHandler) serve(w *respWriter, r *http.Request, rt route) {
	switch rt.name {
	case RouteToken:
		h.s.serveToken(w, r, h.org)
	case RouteRevoke:
		h.s.serveRevoke(w, r)
	case RouteUserInfo, RouteIdentity:
		h.s.serveIdentity(w, r, rt)
	case RouteSOAP:
		h.s.serveSOAP(w, r, h.org, rt)
	case RouteOther:
		if h.org != LoginHost && strings.HasPrefix(r.URL.Path, dataPrefix) {
			h.s.limitHeader(w, h.org, false)
		}
		writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	default:
		h.s.serveREST(w, r, h.org, rt)
	}
}

// respWriter records the status, can discard the response (reset-after),
// and lets a handler ask for a connection reset.
type respWriter struct {
	w       http.ResponseWriter
	discard bool
	hdr     http.Header
	status  int
	reset   bool
	// resetEmpty: a reset-empty-body fault is armed for this request.
	resetEmpty bool
}

func (rw *respWriter) Header() http.Header {
	if rw.discard {
		if rw.hdr == nil {
			rw.hdr = http.Header{}
		}
		return rw.hdr
	}
	return rw.w.Header()
}

func (rw *respWriter) WriteHeader(code int) {
	if rw.status != 0 {
		return
	}
	rw.status = code
	if !rw.discard {
		rw.w.WriteHeader(code)
	}
}

func (rw *respWriter) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.discard {
		return len(b), nil
	}
	return rw.w.Write(b)
}

// abort asks for the connection to be reset instead of answered.
func (rw *respWriter) abort() { rw.reset = true }

// resetConn drops the client connection with a TCP RST (SO_LINGER 0).
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// restError is one element of a Salesforce REST error array.
type restError struct {
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

// writeRESTError answers with a Salesforce REST error array.
func writeRESTError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, []restError{{Message: msg, ErrorCode: code}})
}

// oauthError is the token endpoint's error body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// writeOAuthError answers with an OAuth error body.
func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-cache,no-store")
	writeJSON(w, status, oauthError{Error: code, Description: desc})
}

// writeUnavailable answers an injected 503 in the route's own error format.
func (s *Sim) writeUnavailable(w http.ResponseWriter, org string, rt route) {
	s.mu.Lock()
	ra := time.Duration(s.behavior.RetryAfter)
	s.mu.Unlock()
	if ra > 0 {
		secs := int((ra + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", itoa(secs))
	}
	switch rt.name {
	case RouteToken, RouteRevoke:
		writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "service temporarily unavailable")
	case RouteSOAP:
		writeSOAPFault(w, http.StatusServiceUnavailable, "sf:SERVER_UNAVAILABLE", "SERVER_UNAVAILABLE: server temporarily unavailable")
	default:
		s.limitHeader(w, org, false)
		writeRESTError(w, http.StatusServiceUnavailable, "SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again later.")
	}
}

// writeLimitFault answers an injected API-limit fault.
func (s *Sim) writeLimitFault(w http.ResponseWriter, org string, rt route) {
	switch rt.name {
	case RouteToken, RouteRevoke:
		writeOAuthError(w, http.StatusBadRequest, "rate_limit_exceeded", "too many requests")
	case RouteSOAP:
		writeSOAPFault(w, http.StatusInternalServerError, "sf:REQUEST_LIMIT_EXCEEDED", "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.")
	default:
		s.limitHeader(w, org, false)
		writeRESTError(w, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
	}
}
