package console

import (
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
)

// maxTokenLen bounds a pasted Vault token (real ones are under 200 bytes).
const maxTokenLen = 4096

type loginData struct {
	Nonce   string
	Message string
	Expired bool
}

// loginForm shows the login page with a fresh double-submit nonce: the
// same random value in a cookie and in the form, so a cross-site page
// cannot log the browser in with the attacker's token (login CSRF).
func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(cookieSession); err == nil {
		if _, ok := c.sessions.get(ck.Value); ok {
			http.Redirect(w, r, "/ui/", http.StatusSeeOther)
			return
		}
	}
	c.showLogin(w, http.StatusOK, "", r.URL.Query().Get("expired") != "")
}

func (c *Console) showLogin(w http.ResponseWriter, status int, msg string, expired bool) {
	nonce := randomToken()
	http.SetCookie(w, c.cookie(cookieLogin, nonce, 600))
	c.render(w, status, "login", view{Title: "Log in", Data: loginData{Nonce: nonce, Message: msg, Expired: expired}})
}

// login exchanges a Vault token for a session. The token must read at
// least one app's status (the auditor policy grants it); it is then kept
// server-side only.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		c.showLogin(w, http.StatusBadRequest, "The form could not be read.", false)
		return
	}
	ck, err := r.Cookie(cookieLogin)
	if err != nil || !sameToken(ck.Value, r.PostForm.Get("nonce")) {
		c.showLogin(w, http.StatusForbidden, "The login form expired; please try again.", false)
		return
	}
	raw := strings.TrimSpace(r.PostForm.Get("token"))
	if raw == "" || len(raw) > maxTokenLen || server.HasControl(raw) {
		c.showLogin(w, http.StatusUnauthorized, "Login failed: paste a valid Vault token.", false)
		return
	}
	token := rotator.NewSecret(raw)
	names, err := c.o.Names(r.Context())
	if err != nil {
		c.showLogin(w, http.StatusServiceUnavailable, "The daemon cannot list its apps right now; try again.", false)
		return
	}
	allowed, identity, err := c.o.Reader.CanRead(r.Context(), token, names)
	switch {
	case errors.Is(err, server.ErrUnauthenticated):
		c.o.Logger.Info("console: login refused", zap.String("reason", "invalid token"))
		c.showLogin(w, http.StatusUnauthorized, "Login failed: Vault does not accept this token.", false)
		return
	case errors.Is(err, server.ErrForbidden), errors.Is(err, rotator.ErrPermission), err == nil && len(allowed) == 0:
		c.o.Logger.Info("console: login refused", zap.String("reason", "no read right"))
		c.showLogin(w, http.StatusForbidden, "Login failed: this token may not read any app (the auditor policy grants it).", false)
		return
	case err != nil:
		c.o.Logger.Warn("console: login", zap.Error(err))
		c.showLogin(w, http.StatusServiceUnavailable, "Vault cannot check the token right now; try again.", false)
		return
	}
	id, _ := c.sessions.create(token, identity)
	c.o.Logger.Info("console: login", zap.String("identity", identity), zap.Int("apps", len(allowed)))
	http.SetCookie(w, c.cookie(cookieLogin, "", -1))
	http.SetCookie(w, c.cookie(cookieSession, id, int(c.o.SessionTTL.Seconds())))
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// logout ends the session; it needs the session's CSRF token.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(cookieSession)
	if err != nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	sess, ok := c.sessions.get(ck.Value)
	if !ok {
		http.SetCookie(w, c.cookie(cookieSession, "", -1))
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	if err := r.ParseForm(); err != nil || !sameToken(sess.csrf, r.PostForm.Get("csrf")) {
		c.errorPage(w, r, sess, http.StatusForbidden, "The request did not carry this session's CSRF token.")
		return
	}
	c.sessions.drop(ck.Value)
	c.o.Logger.Info("console: logout", zap.String("identity", sess.identity))
	http.SetCookie(w, c.cookie(cookieSession, "", -1))
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
