package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// Cookie names. The session cookie holds a random id only.
const (
	cookieSession = "ecarotator_session"
	cookieLogin   = "ecarotator_login"
)

// session is one logged-in user. The Vault token is held here, in the
// daemon's memory, and nowhere else.
type session struct {
	token    rotator.Secret
	identity string
	csrf     string
	expires  time.Time
}

// sessions is the server-side session store, keyed by the SHA-256 of the
// cookie value (a memory dump does not give usable cookies).
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	max int
	now func() time.Time
	m   map[[32]byte]*session
}

func newSessions(ttl time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, max: max, now: now, m: map[[32]byte]*session{}}
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// create stores a new session and returns its cookie value.
func (s *sessions) create(token rotator.Secret, identity string) (string, *session) {
	id := randomToken()
	now := s.now()
	sess := &session{token: token, identity: identity, csrf: randomToken(), expires: now.Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		for k, v := range s.m {
			if !now.Before(v.expires) {
				delete(s.m, k)
			}
		}
		// Still full: the oldest-expiring session goes.
		for len(s.m) >= s.max {
			var oldest [32]byte
			var at time.Time
			for k, v := range s.m {
				if at.IsZero() || v.expires.Before(at) {
					oldest, at = k, v.expires
				}
			}
			delete(s.m, oldest)
		}
	}
	s.m[sha256.Sum256([]byte(id))] = sess
	return id, sess
}

// get returns the live session of id; an expired one is dropped.
func (s *sessions) get(id string) (*session, bool) {
	if id == "" {
		return nil, false
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[k]
	if !ok {
		return nil, false
	}
	if !s.now().Before(sess.expires) {
		delete(s.m, k)
		return nil, false
	}
	return sess, true
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sha256.Sum256([]byte(id)))
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// sameToken compares two CSRF tokens in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (c *Console) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/ui/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.o.Secure, SameSite: http.SameSiteStrictMode}
}
