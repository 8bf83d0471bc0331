package salesforce

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	oauth2jwt "golang.org/x/oauth2/jwt"

	"github.com/ecarotator/ecarotator/rotator"
)

const jwtGrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// Audience modes accepted in Options.Audience besides an explicit URL.
const (
	// AudienceAuto tries the My Domain URL, then the login URL, and keeps
	// the first that logs in for the life of the Client (the default).
	AudienceAuto = "auto"
	// AudienceLogin is the login URL (https://login.salesforce.com, the
	// sandbox one for test hosts, or the configured login URL elsewhere).
	AudienceLogin = "login"
	// AudienceMyDomain is the org's My Domain URL.
	AudienceMyDomain = "mydomain"
)

// tokenResponse is the token endpoint's success JSON. Only access_token and
// instance_url are required; signature and issued_at are not (their presence
// for JWT is unconfirmed).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	InstanceURL string `json:"instance_url"`
	ID          string `json:"id"`
	TokenType   string `json:"token_type"`
	Scope       string `json:"scope"`
	// Token is the oauth2 form of the response (Expiry zero: Salesforce
	// does not say; a 401 ends the token's life).
	Token *oauth2.Token `json:"-"`
}

// decodeTokenResponse parses a 2xx token response body (kept for the fuzz
// test and for callers holding a raw body).
func decodeTokenResponse(b []byte) (*tokenResponse, error) {
	var tr tokenResponse
	if err := json.Unmarshal(trimJSON(b), &tr); err != nil {
		return nil, errors.New("token response is not JSON")
	}
	if tr.AccessToken == "" {
		return nil, errors.New("token response lacks access_token")
	}
	tt := tr.TokenType
	if tt == "" {
		tt = "Bearer"
	}
	tr.Token = &oauth2.Token{AccessToken: tr.AccessToken, TokenType: tt}
	return &tr, nil
}

// fromOAuth2 converts what golang.org/x/oauth2 returned into a
// tokenResponse; instance_url and id travel in the token's extra fields.
func fromOAuth2(tok *oauth2.Token) (*tokenResponse, error) {
	if tok == nil || tok.AccessToken == "" {
		return nil, errors.New("token response lacks access_token")
	}
	str := func(k string) string {
		s, _ := tok.Extra(k).(string)
		return s
	}
	tt := tok.TokenType
	if tt == "" {
		tt = "Bearer"
	}
	return &tokenResponse{
		AccessToken: tok.AccessToken, InstanceURL: str("instance_url"), ID: str("id"), TokenType: tt, Scope: str("scope"),
		// Expiry stays zero: Salesforce sends no expires_in.
		Token: &oauth2.Token{AccessToken: tok.AccessToken, TokenType: tt},
	}, nil
}

// captureTransport remembers the last transport error, because
// x/oauth2/jwt flattens it into a string (%v) and the class (dial failure,
// timeout, reset) would be lost.
type captureTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	err  error
}

func (c *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
	}
	return resp, err
}

func (c *captureTransport) last() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// oauthFetch runs one token request through a golang.org/x/oauth2 token
// source and classifies the outcome with our vocabulary. fetch receives a
// context carrying the HTTP client to use. The form (assertion, client
// secret) and x/oauth2's RetrieveError text (which embeds the raw body)
// never reach an error: errors carry only the status and the OAuth
// error/description, scrubbed of the given secrets.
func oauthFetch(ctx context.Context, hc *http.Client, timeout time.Duration, fetch func(ctx context.Context) (*oauth2.Token, error), secrets ...string) (*tokenResponse, *APIError) {
	const op = "POST " + tokenPath
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	ct := &captureTransport{base: base}
	client := *hc
	client.Transport = ct
	tok, err := fetch(context.WithValue(ctx, oauth2.HTTPClient, &client))
	if err == nil {
		tr, derr := fromOAuth2(tok)
		if derr != nil {
			return nil, &APIError{Op: op, Status: http.StatusOK, Code: "BAD_TOKEN_RESPONSE", Message: derr.Error(), Class: ClassFinal}
		}
		return tr, nil
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		status := re.Response.StatusCode
		var oe oauthError
		_ = json.Unmarshal(trimJSON(re.Body), &oe)
		code, msg := oe.Error, truncate(oe.Description)
		if code == "" {
			// Some proxies and the REST layer answer with the array shape.
			code, msg = parseRESTError(re.Body)
		}
		// Defence in depth: the description must not echo what we sent.
		msg = scrub(msg, secrets...)
		return nil, &APIError{Op: op, Status: status, Code: code, Message: msg, Class: classifyOAuthError(status, code, msg)}
	}
	if terr := ct.last(); terr != nil {
		// A token request has no side effect worth guarding: idempotent.
		e, _ := transportError(op, terr, true)
		return nil, e
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, &APIError{Op: op, Class: ClassTransient, err: cerr}
	}
	// A 2xx x/oauth2 could not parse (not JSON, no access_token) or a body
	// read cut short. x/oauth2's message may quote the body: drop it.
	return nil, &APIError{Op: op, Status: http.StatusOK, Code: "BAD_TOKEN_RESPONSE", Message: "token response could not be parsed", Class: ClassFinal}
}

// jwtFetch performs the JWT bearer grant with golang.org/x/oauth2/jwt: aud
// is a single JSON string, exp is now + jwtLifetime (x/oauth2/jwt reads the
// wall clock; it has no injectable clock).
func jwtFetch(ctx context.Context, hc *http.Client, timeout time.Duration, keyPEM []byte, clientID, username, tokenURL, audience string) (*tokenResponse, *APIError) {
	cfg := &oauth2jwt.Config{
		Email:      clientID,
		Subject:    username,
		PrivateKey: keyPEM,
		TokenURL:   tokenURL,
		Audience:   audience,
		Expires:    jwtLifetime,
	}
	return oauthFetch(ctx, hc, timeout, func(ctx context.Context) (*oauth2.Token, error) {
		return cfg.TokenSource(ctx).Token()
	})
}

// clientCredentialsFetch performs the client-credentials grant with
// golang.org/x/oauth2/clientcredentials, the pair in the form body or in a
// Basic header.
func clientCredentialsFetch(ctx context.Context, hc *http.Client, timeout time.Duration, tokenURL, key string, secret rotator.Secret, basic bool) (*tokenResponse, *APIError) {
	style := oauth2.AuthStyleInParams
	if basic {
		style = oauth2.AuthStyleInHeader
	}
	cfg := &clientcredentials.Config{ClientID: key, ClientSecret: secret.Reveal(), TokenURL: tokenURL, AuthStyle: style}
	return oauthFetch(ctx, hc, timeout, func(ctx context.Context) (*oauth2.Token, error) {
		return cfg.Token(ctx)
	}, secret.Reveal())
}

// keyPEM returns key as a PKCS#8 PEM block, the form x/oauth2/jwt parses.
func keyPEM(key *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseRSAKey parses a PEM RSA private key (PKCS#1 or PKCS#8). The error
// never quotes the key.
func parseRSAKey(p rotator.Secret) (*rsa.PrivateKey, error) {
	k, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(p.Reveal()))
	if err != nil {
		return nil, errors.New("not a PEM RSA private key")
	}
	return k, nil
}

// trimJSON strips whitespace and a UTF-8 BOM.
func trimJSON(b []byte) []byte {
	s := strings.TrimSpace(strings.TrimPrefix(string(b), "\ufeff"))
	return []byte(s)
}
