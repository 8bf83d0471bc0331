package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
)

//go:embed assets templates
var files embed.FS

// Defaults of the console, documented in the README.
const (
	// DefaultSessionTTL is how long a console session lasts after login.
	DefaultSessionTTL = 30 * time.Minute
	// DefaultMaxSessions bounds the sessions held in memory.
	DefaultMaxSessions = 1024
	// DefaultMaxRows bounds the audit records shown on one page (the
	// newest are kept; the export holds every match).
	DefaultMaxRows = 500
)

// Reader is the read API's authorization (server.Server.CanRead): the
// apps the token may read and the caller's identity.
type Reader interface {
	CanRead(ctx context.Context, token rotator.Secret, apps []string) (allowed []string, identity string, err error)
}

// Options configure a Console.
type Options struct {
	// Status is the daemon's status provider, the one the JSON API serves.
	Status server.Status
	// Names lists the configured apps.
	Names func(ctx context.Context) ([]string, error)
	// Reader authorises every page (required).
	Reader Reader
	// Versions lists the Vault KV versions of an app's path (metadata
	// only). Nil hides the versions table.
	Versions func(ctx context.Context, app string) ([]rotator.VersionInfo, error)
	// AuditFile is the audit log the trail pages read (required).
	AuditFile string
	// Verify verifies the audit log with the caller's own Vault token
	// (transit/verify, the public key, the anchor: what the auditor
	// policy grants). Nil shows "not checked".
	Verify func(ctx context.Context, token rotator.Secret) (*audit.VerifyResult, error)
	// Secure marks the cookies Secure (the daemon serves TLS).
	Secure bool
	// SessionTTL, MaxSessions and MaxRows default to the constants above.
	SessionTTL  time.Duration
	MaxSessions int
	MaxRows     int
	Now         func() time.Time
	Logger      *zap.Logger
}

func (o *Options) defaults() error {
	if o.Status == nil || o.Names == nil || o.Reader == nil || o.AuditFile == "" {
		return errors.New("console: status, names, reader and audit file are required")
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return nil
}

// Console serves the auditor console.
type Console struct {
	o        Options
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
}

// New builds the console.
func New(o Options) (*Console, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	c := &Console{o: o, sessions: newSessions(o.SessionTTL, o.MaxSessions, o.Now), pages: map[string]*template.Template{}}
	for _, p := range []string{"login", "overview", "app", "audit", "approvals", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", p, err)
		}
		c.pages[p] = t
	}
	assets, err := fs.Sub(files, "assets")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /ui/login", c.loginForm)
	mux.HandleFunc("POST /ui/login", c.login)
	mux.HandleFunc("POST /ui/logout", c.logout)
	mux.HandleFunc("GET /ui/{$}", c.page(c.overview))
	mux.HandleFunc("GET /ui/apps/{name}", c.page(c.app))
	mux.HandleFunc("GET /ui/audit", c.page(c.trail))
	mux.HandleFunc("GET /ui/audit/export", c.page(c.export))
	mux.HandleFunc("GET /ui/approvals", c.page(c.approvals))
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, nil, http.StatusNotFound, "No such page.")
	})
	c.mux = mux
	return c, nil
}

// ServeHTTP implements http.Handler with the console's security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

// view is what every page template gets.
type view struct {
	Title    string
	Nav      string
	Identity string
	CSRF     string
	Data     any
}

// request is an authorised page request.
type request struct {
	sess    *session
	allowed map[string]bool
	names   []string // allowed, in config order
}

// page authorises a request: a live session whose token still reads at
// least one app. Anything else goes back to the login page.
func (c *Console) page(fn func(w http.ResponseWriter, r *http.Request, q *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(cookieSession)
		var sess *session
		var ok bool
		if err == nil {
			sess, ok = c.sessions.get(ck.Value)
		}
		if !ok {
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		names, err := c.o.Names(r.Context())
		if err != nil {
			c.errorPage(w, r, sess, http.StatusServiceUnavailable, "The daemon cannot list its apps right now; try again.")
			return
		}
		allowed, _, err := c.o.Reader.CanRead(r.Context(), sess.token, names)
		switch {
		case errors.Is(err, server.ErrUnauthenticated), errors.Is(err, server.ErrForbidden), errors.Is(err, rotator.ErrPermission):
			// The token was revoked, expired or lost its policy.
			c.sessions.drop(ck.Value)
			http.SetCookie(w, c.cookie(cookieSession, "", -1))
			http.Redirect(w, r, "/ui/login?expired=1", http.StatusSeeOther)
			return
		case err != nil:
			c.o.Logger.Warn("console: authorize", zap.Error(err))
			c.errorPage(w, r, sess, http.StatusServiceUnavailable, "Vault cannot check your token right now; try again.")
			return
		}
		q := &request{sess: sess, allowed: map[string]bool{}, names: allowed}
		for _, a := range allowed {
			q.allowed[a] = true
		}
		fn(w, r, q)
	}
}

// render writes page p.
func (c *Console) render(w http.ResponseWriter, status int, p string, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.pages[p].Execute(w, v); err != nil {
		c.o.Logger.Warn("console: render", zap.String("page", p), zap.Error(err))
	}
}

func (c *Console) view(q *request, title, nav string, data any) view {
	return view{Title: title, Nav: nav, Identity: q.sess.identity, CSRF: q.sess.csrf, Data: data}
}

// errorPage shows a fixed sentence (never an error's text).
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, sess *session, status int, msg string) {
	v := view{Title: http.StatusText(status), Data: msg}
	if sess != nil {
		v.Identity, v.CSRF = sess.identity, sess.csrf
	}
	c.render(w, status, "error", v)
}
