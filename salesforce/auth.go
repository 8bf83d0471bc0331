package salesforce

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/ecarotator/ecarotator/rotator"
)

const jwtGrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

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

// decodeTokenResponse parses a 2xx token response.
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

// tokenRequest POSTs a form to a token endpoint and classifies the outcome.
// The form (assertion, client secret) and the Basic header never reach an
// error: errors carry only the status and the OAuth error/description.
func tokenRequest(ctx context.Context, hc *http.Client, tokenURL string, form url.Values, user, pass string, maxBody int64, timeout time.Duration) (*tokenResponse, *APIError) {
	const op = "POST " + tokenPath
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &APIError{Op: op, Code: "BAD_TOKEN_URL", Class: ClassFinal}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if user != "" || pass != "" {
		// RFC 6749 §2.3.1: form-encode both halves before Basic.
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := hc.Do(req)
	if err != nil {
		// A token request has no side effect worth guarding: idempotent.
		e, _ := transportError(op, err, true)
		return nil, e
	}
	defer resp.Body.Close()
	b, rerr := readBounded(resp.Body, maxBody)
	if rerr != nil {
		class := ClassTransient
		if errors.Is(rerr, ErrBodyTooLarge) {
			class = ClassFinal
		}
		return nil, &APIError{Op: op, Status: resp.StatusCode, Class: class, err: redactErr(rerr)}
	}
	if resp.StatusCode/100 == 2 {
		tr, err := decodeTokenResponse(b)
		if err != nil {
			return nil, &APIError{Op: op, Status: resp.StatusCode, Code: "BAD_TOKEN_RESPONSE", Message: err.Error(), Class: ClassFinal}
		}
		return tr, nil
	}
	var oe oauthError
	_ = json.Unmarshal(trimJSON(b), &oe)
	code, msg := oe.Error, truncate(oe.Description)
	if code == "" {
		// Some proxies and the REST layer answer with the array shape.
		code, msg = parseRESTError(b)
	}
	// Defence in depth: the description must not echo what we sent.
	msg = scrub(msg, form.Get("client_secret"), form.Get("assertion"), pass)
	apiErr := &APIError{Op: op, Status: resp.StatusCode, Code: code, Message: msg, Class: classifyOAuth(resp.StatusCode, code)}
	return nil, apiErr
}

// signAssertion builds the RS256 JWT bearer assertion: iss = consumer key,
// sub = username, aud = login host, exp = now + 3 minutes.
func signAssertion(key *rsa.PrivateKey, clientID, username, audience string, now time.Time) (string, error) {
	claims := jwt.RegisteredClaims{
		Issuer:    clientID,
		Subject:   username,
		Audience:  jwt.ClaimStrings{audience},
		ExpiresAt: jwt.NewNumericDate(now.Add(jwtLifetime)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
}

// parseRSAKey parses a PEM RSA private key (PKCS#1 or PKCS#8). The error
// never quotes the key.
func parseRSAKey(pem rotator.Secret) (*rsa.PrivateKey, error) {
	k, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(pem.Reveal()))
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
