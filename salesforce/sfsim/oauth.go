package sfsim

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// JWTBearerGrant is the grant_type of the JWT bearer flow.
const JWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// maxTokens is the token count from which issuing sweeps expired tokens.
const maxTokens = 10000

// tokenResponse is the token endpoint's success body (all strings).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	Signature   string `json:"signature,omitempty"`
	Scope       string `json:"scope"`
	InstanceURL string `json:"instance_url"`
	ID          string `json:"id"`
	TokenType   string `json:"token_type"`
	IssuedAt    string `json:"issued_at"`
}

// oauthFail is a token endpoint error decided under the lock, written after.
type oauthFail struct {
	status int
	code   string
	desc   string
}

func (e *oauthFail) Error() string { return e.code + ": " + e.desc }

var (
	errClientID     = &oauthFail{http.StatusBadRequest, "invalid_client_id", "client identifier invalid"}
	errClientSecret = &oauthFail{http.StatusBadRequest, "invalid_client", "invalid client credentials"}
	errNotInstalled = &oauthFail{http.StatusBadRequest, "app_not_found", "External client app is not installed in this org"}
	errNoRunAs      = &oauthFail{http.StatusBadRequest, "invalid_grant", "no client credentials user enabled"}
	errAssertion    = &oauthFail{http.StatusBadRequest, "invalid_grant", "invalid assertion"}
	errAudience     = &oauthFail{http.StatusBadRequest, "invalid_grant", "audience is invalid"}
	errNotApproved  = &oauthFail{http.StatusBadRequest, "invalid_grant", "user hasn't approved this consumer"}
	// errExpired is what Salesforce answers for a JWT past its exp.
	errExpired = &oauthFail{http.StatusBadRequest, "invalid_grant", "expired authorization code"}
	// errExpTooFar is an invented text (Behavior.JWTMaxLifetime only).
	errExpTooFar     = &oauthFail{http.StatusBadRequest, "invalid_grant", "assertion expiration is too far in the future"}
	errJWTNotEnabled = &oauthFail{http.StatusBadRequest, "invalid_grant", "JWT bearer flow is not enabled for this app"}
)

// serveToken implements POST /services/oauth2/token.
func (s *Sim) serveToken(w http.ResponseWriter, r *http.Request, host string) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "must use HTTP POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "invalid request body")
		return
	}
	var (
		resp tokenResponse
		err  error
	)
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		resp, err = s.clientCredentials(r, host)
	case JWTBearerGrant:
		resp, err = s.jwtBearer(r.PostForm.Get("assertion"), host)
	default:
		err = &oauthFail{http.StatusBadRequest, "unsupported_grant_type", "grant type not supported"}
	}
	var f *oauthFail
	if errors.As(err, &f) {
		writeOAuthError(w, f.status, f.code, f.desc)
		return
	}
	w.Header().Set("Cache-Control", "no-cache,no-store")
	writeJSON(w, http.StatusOK, resp)
}

// availableECA is an ECA usable in an org: its own, or installed from a Dev Hub.
type availableECA struct {
	eca   *eca
	owner *org
}

// ecasIn lists the ECAs usable in o; s.mu must be held.
func (s *Sim) ecasIn(o *org) []availableECA {
	var out []availableECA
	for _, e := range o.ECAs {
		out = append(out, availableECA{e, o})
	}
	for _, in := range o.Installs {
		hub, name, _ := strings.Cut(in, "/")
		if h := s.org(hub); h != nil {
			if e := h.ownECA(name); e != nil {
				out = append(out, availableECA{e, h})
			}
		}
	}
	return out
}

// credMatch is a consumer key found in an org.
type credMatch struct {
	availableECA
	consumer *consumer
	secret   string
	// validFrom is when the pair became usable (propagation starts there).
	validFrom time.Time
}

// findKey finds which ECA and pair a consumer key belongs to in o: the
// primary pair, a Rotated pair still in its slot, or (with
// StagedAuthenticates) an Active staged pair. s.mu must be held.
func (s *Sim) findKey(o *org, key string, now time.Time) (credMatch, error) {
	if key == "" {
		return credMatch{}, errClientID
	}
	avail := s.ecasIn(o)
	here := map[*eca]bool{}
	for _, a := range avail {
		here[a.eca] = true
		for _, c := range a.eca.Consumers {
			c.lapse(now)
			if c.Key == key {
				return credMatch{a, c, c.Secret, c.Since}, nil
			}
			if st := c.Slot; st != nil && st.Key == key {
				switch {
				case st.State == StateRotated:
					return credMatch{a, c, st.Secret, time.Time{}}, nil
				case st.State == StateActive && s.behavior.StagedAuthenticates:
					return credMatch{a, c, st.Secret, st.Created}, nil
				}
			}
		}
	}
	// Known elsewhere but not here: the app is not installed in this org.
	for _, other := range s.orgs {
		for _, e := range other.ECAs {
			if here[e] {
				continue
			}
			for _, c := range e.Consumers {
				if c.Key == key || (c.Slot != nil && c.Slot.Key == key) {
					return credMatch{}, errNotInstalled
				}
			}
		}
	}
	return credMatch{}, errClientID
}

// propagated reports whether a pair valid from t is known to o yet.
func (s *Sim) propagated(o *org, t, now time.Time) bool {
	d := s.propagationLocked(o)
	return t.IsZero() || d == 0 || !now.Before(t.Add(d))
}

// clientCredentials implements grant_type=client_credentials.
func (s *Sim) clientCredentials(r *http.Request, host string) (tokenResponse, error) {
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	if host == LoginHost {
		return tokenResponse{}, &oauthFail{http.StatusBadRequest, "invalid_grant", "request not supported on this domain"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.org(host)
	if o == nil {
		return tokenResponse{}, &oauthFail{http.StatusBadRequest, "inactive_org", "organization is inactive"}
	}
	now := s.nowLocked()
	m, err := s.findKey(o, id, now)
	if err != nil {
		return tokenResponse{}, err
	}
	if !s.propagated(o, m.validFrom, now) {
		// A pair that has not reached this org yet is unknown there.
		return tokenResponse{}, errClientID
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(m.secret)) != 1 && !m.overlapSecret(secret) { // overlap: mdapi.go
		return tokenResponse{}, errClientSecret
	}
	runAs := m.eca.ClientCredentialsUser
	if m.owner != o {
		if u, ok := o.RunAs[m.eca.DeveloperName]; ok {
			runAs = u
		}
	}
	u := o.user(runAs)
	if runAs == "" || u == nil {
		return tokenResponse{}, errNoRunAs
	}
	resp := s.issueLocked(o, u, m.eca, now)
	mac := hmac.New(sha256.New, []byte(m.secret))
	mac.Write([]byte(resp.ID + resp.IssuedAt))
	resp.Signature = base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return resp, nil
}

// issueLocked creates an access token for u in o.
func (s *Sim) issueLocked(o *org, u *UserConfig, via *eca, now time.Time) tokenResponse {
	if len(s.tokens) >= max(s.sweepAt, maxTokens) {
		for k, v := range s.tokens {
			if !now.Before(v.expires) {
				delete(s.tokens, k)
			}
		}
		// Sweep again only after the live set has doubled: amortised O(1).
		s.sweepAt = 2 * len(s.tokens)
	}
	tok := s.ids.token(o.OrgID)
	s.tokens[tok] = session{org: o.Name, userID: u.UserID, username: u.Username, expires: now.Add(s.tokenTTL), eca: via}
	return tokenResponse{
		AccessToken: tok,
		Scope:       "api",
		InstanceURL: s.orgURLLocked(o.Name),
		ID:          s.loginURLLocked() + "/id/" + o.OrgID + "/" + u.UserID,
		TokenType:   "Bearer",
		IssuedAt:    strconv.FormatInt(now.UnixMilli(), 10),
	}
}

// jwtClaims are the claims the simulator checks.
type jwtClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Prn string          `json:"prn"`
	Aud json.RawMessage `json:"aud"`
	Exp *json.Number    `json:"exp"`
}

// parseJWT splits and decodes a compact JWS without verifying it.
func parseJWT(assertion string) (alg string, claims jwtClaims, signed, sig []byte, err error) {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "", claims, nil, nil, errAssertion
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return "", claims, nil, nil, errAssertion
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &hdr) != nil {
		return "", claims, nil, nil, errAssertion
	}
	dec := json.NewDecoder(strings.NewReader(string(cb)))
	dec.UseNumber()
	if dec.Decode(&claims) != nil {
		return "", claims, nil, nil, errAssertion
	}
	return hdr.Alg, claims, []byte(parts[0] + "." + parts[1]), sig, nil
}

// audiences reads "aud" as a string, or (when arrays are allowed) an array
// of strings.
func (c jwtClaims) audiences(allowArray bool) []string {
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}
	}
	if !allowArray {
		return nil
	}
	var many []string
	_ = json.Unmarshal(c.Aud, &many)
	return many
}

// jwtBearer implements the JWT bearer grant: RS256 signature against the
// ECA's certificate, iss = consumer key, sub (or prn) = a pre-authorized
// user, aud accepted, exp in (now, now+3m].
func (s *Sim) jwtBearer(assertion, host string) (tokenResponse, error) {
	alg, claims, signed, sig, err := parseJWT(assertion)
	if err != nil {
		return tokenResponse{}, err
	}
	if alg != "RS256" {
		return tokenResponse{}, errAssertion
	}
	username := claims.Sub
	if claims.Prn != "" {
		username = claims.Prn
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	// The login host finds the user's org; a My Domain host only its own.
	var o *org
	var u *UserConfig
	for _, cand := range s.orgs {
		if host != LoginHost && cand.Name != host {
			continue
		}
		if x := cand.user(username); x != nil {
			o, u = cand, x
			break
		}
	}
	if o == nil {
		return tokenResponse{}, errNotApproved
	}
	m, err := s.findKey(o, claims.Iss, now)
	if err != nil {
		return tokenResponse{}, err
	}
	if !s.propagated(o, m.validFrom, now) {
		return tokenResponse{}, errClientID
	}
	if m.eca.pub == nil {
		return tokenResponse{}, errJWTNotEnabled
	}
	sum := sha256.Sum256(signed)
	if rsa.VerifyPKCS1v15(m.eca.pub, crypto.SHA256, sum[:], sig) != nil {
		return tokenResponse{}, errAssertion
	}
	if !s.audienceOK(claims.audiences(s.behavior.ArrayAudience), o, host) {
		return tokenResponse{}, errAudience
	}
	if claims.Exp == nil {
		return tokenResponse{}, errAssertion
	}
	expF, err := claims.Exp.Float64()
	if err != nil {
		return tokenResponse{}, errAssertion
	}
	// Compare in float seconds: a client writing milliseconds (or any
	// huge value) must not overflow a time.Duration.
	nowS := float64(now.UnixNano()) / 1e9
	switch {
	case !(expF > nowS): // also NaN
		return tokenResponse{}, errExpired
	case s.behavior.JWTMaxLifetime > 0 && expF > nowS+time.Duration(s.behavior.JWTMaxLifetime).Seconds():
		return tokenResponse{}, errExpTooFar
	}
	approved := false
	for _, p := range m.eca.PreAuthorizedUsers {
		approved = approved || p == username
	}
	if !approved {
		return tokenResponse{}, errNotApproved
	}
	return s.issueLocked(o, u, m.eca, now), nil
}

// audienceOK checks aud against Behavior.JWTAudiences, or by default the
// login URL and the user's org My Domain URL.
func (s *Sim) audienceOK(auds []string, o *org, host string) bool {
	accepted := s.behavior.JWTAudiences
	if len(accepted) == 0 {
		accepted = []string{s.loginURLLocked(), s.orgURLLocked(o.Name)}
	}
	for _, a := range auds {
		for _, ok := range accepted {
			if strings.TrimSuffix(a, "/") == strings.TrimSuffix(ok, "/") {
				return true
			}
		}
	}
	return false
}

// sessionFor validates a bearer token for org; s.mu must be held.
func (s *Sim) sessionLocked(tok, org string, now time.Time) (session, bool) {
	sess, ok := s.tokens[tok]
	if !ok || sess.org != org {
		return session{}, false
	}
	if !now.Before(sess.expires) {
		delete(s.tokens, tok)
		return session{}, false
	}
	return sess, true
}

// serveRevoke implements POST /services/oauth2/revoke (form "token"): a
// known access token is revoked on any host; an unknown one is 400
// invalid_token.
func (s *Sim) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "must use HTTP POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "invalid request body")
		return
	}
	tok := r.PostForm.Get("token")
	s.mu.Lock()
	_, ok := s.tokens[tok]
	delete(s.tokens, tok)
	s.mu.Unlock()
	if !ok {
		writeOAuthError(w, http.StatusBadRequest, "invalid_token", "invalid token")
		return
	}
	w.WriteHeader(http.StatusOK)
}
