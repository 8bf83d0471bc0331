package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/vault"
)

// The daemon's API is the break-glass path (M6): the daemon checks the
// caller's Vault capability, their TOTP code and the two-person rule with
// its own rights, which the caller does not hold. Commands that run the
// check in the caller's own process can only be as strong as the caller's
// token is weak (README "Threat model").

// daemonURL is where operator commands reach the daemon: --server, else
// ECAROTATOR_SERVER, else server.url of the config file (when it loads).
// "" means no daemon: the command works on Vault directly.
func (c *cli) daemonURL(flag string) string {
	if flag != "" {
		return flag
	}
	if v := c.getenv("ECAROTATOR_SERVER"); v != "" {
		return v
	}
	if _, err := os.Stat(c.cfgPath); err != nil {
		return ""
	}
	cfg, err := config.Load(c.cfgPath, c.getenv)
	if err != nil {
		return ""
	}
	return cfg.Server.URL
}

// callerToken is the operator's own Vault token (VAULT_TOKEN), sent to the
// daemon as X-Vault-Token; the daemon asks Vault what it may do.
func (c *cli) callerToken() (rotator.Secret, error) {
	if t := strings.TrimSpace(c.getenv("VAULT_TOKEN")); t != "" {
		return rotator.NewSecret(t), nil
	}
	return rotator.Secret{}, usageError{errors.New("the daemon API needs the caller's Vault token in VAULT_TOKEN")}
}

// maxAPIBody bounds a daemon answer.
const maxAPIBody = 16 << 20

// apiError is a refusal by the daemon, with its HTTP status and code.
type apiError struct {
	Status int
	Body   server.ErrorBody
}

func (e *apiError) Error() string {
	return fmt.Sprintf("daemon answered HTTP %d %s: %s", e.Status, e.Body.Code, e.Body.Error)
}

// Is lets callers branch on the daemon's refusal like on a local one.
func (e *apiError) Is(target error) bool {
	switch e.Body.Code {
	case server.CodeForbidden, server.CodeMFARequired, server.CodeUnauthenticated:
		return target == rotator.ErrPermission
	case server.CodeNotFound:
		return target == rotator.ErrNotFound
	case server.CodePreviousInOverlap:
		return target == rotator.ErrPreviousInOverlap
	}
	return false
}

// apiCall sends a JSON request to the daemon with the caller's token and
// decodes a JSON answer (any 2xx) into out. Bodies are bounded; the token
// never appears in an error.
func apiCall(ctx context.Context, base, method, path string, token rotator.Secret, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	u, err := url.Parse(strings.TrimRight(base, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Errorf("--server: %q is not an http(s) URL", base)}
	}
	if u.Scheme == "http" && !config.LoopbackListen(u.Host) {
		return usageError{fmt.Errorf("--server: refusing to send a Vault token over plain http to %s (use https)", u.Host)}
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return usageError{fmt.Errorf("--server: %w", err)}
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !token.IsZero() {
		req.Header.Set("X-Vault-Token", token.Reveal())
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds no secret, but keep errors short
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode}
		_ = json.Unmarshal(raw, &e.Body)
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// unwrap redeems the wrapping token a daemon reveal returned, against the
// Vault the environment names (VAULT_ADDR, VAULT_CACERT...).
func unwrap(ctx context.Context, wrapToken string) (key, secret string, err error) {
	data, err := vault.UnwrapFromEnv(ctx, rotator.NewSecret(wrapToken))
	if err != nil {
		return "", "", fmt.Errorf("unwrap the revealed credential (already used, or expired?): %w", err)
	}
	key, _ = data["consumer_key"].(string)
	secret, _ = data["consumer_secret"].(string)
	return key, secret, nil
}

// checkReason refuses a --reason with control characters: it is shown on
// auditors' terminals (review L9).
func checkReason(reason string) error {
	if server.HasControl(reason) {
		return usageError{errors.New("--reason must not contain control characters")}
	}
	return nil
}
