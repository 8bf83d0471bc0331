package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"

	"github.com/ecarotator/ecarotator/rotator"
)

// loginToken checks the configured token with lookup-self and describes it
// as a login secret, so Run can renew it like any other.
func (c *Client) loginToken(ctx context.Context) (*vaultapi.Secret, error) {
	tok := c.o.Auth.Token.Reveal()
	if tok == "" {
		tok = strings.TrimSpace(os.Getenv("VAULT_TOKEN"))
	}
	if tok == "" {
		return nil, newOpError("login", AuthToken, ErrBadCredentials, errors.New("no token: set auth.token or VAULT_TOKEN"))
	}
	lc, err := c.clientWithToken(rotator.NewSecret(tok))
	if err != nil {
		return nil, err
	}
	self, err := lc.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, loginErr(AuthToken, err)
	}
	renewable, _ := self.TokenIsRenewable()
	ttl, _ := self.TokenTTL()
	return &vaultapi.Secret{Auth: &vaultapi.SecretAuth{
		ClientToken:   tok,
		Renewable:     renewable,
		LeaseDuration: int(ttl.Seconds()),
	}}, nil
}

// loginAppRole logs in with the role id and a secret id read now (files and
// variables may change between logins).
func (c *Client) loginAppRole(ctx context.Context) (*vaultapi.Secret, error) {
	a := c.o.Auth
	roleID := a.RoleID
	if a.RoleIDFile != "" {
		b, err := os.ReadFile(a.RoleIDFile)
		if err != nil {
			return nil, fmt.Errorf("vault: login approle: role id: %w", err)
		}
		roleID = strings.TrimSpace(string(b))
	}
	secretID, err := c.appRoleSecretID(ctx)
	if err != nil {
		return nil, err
	}
	m, err := approle.NewAppRoleAuth(roleID, &approle.SecretID{FromString: secretID.Reveal()}, approle.WithMountPath(a.MountPath))
	if err != nil {
		return nil, newOpError("login", AuthAppRole, ErrBadCredentials, err)
	}
	lc, err := c.clientWithToken(rotator.Secret{})
	if err != nil {
		return nil, err
	}
	s, err := m.Login(ctx, lc)
	if err != nil {
		return nil, loginErr(AuthAppRole, err)
	}
	return s, nil
}

// appRoleSecretID returns the secret id from its source, unwrapping it when
// it is a response-wrapping token. A wrapping token can be unwrapped only
// once, so the result is remembered for as long as the source still holds
// the same wrapping token.
func (c *Client) appRoleSecretID(ctx context.Context) (rotator.Secret, error) {
	a := c.o.Auth
	var raw string
	switch {
	case !a.SecretID.IsZero():
		raw = a.SecretID.Reveal()
	case a.SecretIDFile != "":
		b, err := os.ReadFile(a.SecretIDFile)
		if err != nil {
			return rotator.Secret{}, fmt.Errorf("vault: login approle: secret id: %w", err)
		}
		raw = strings.TrimSpace(string(b))
	default:
		raw = strings.TrimSpace(os.Getenv(a.SecretIDEnv))
	}
	if raw == "" {
		return rotator.Secret{}, newOpError("login", AuthAppRole, ErrBadCredentials, errors.New("secret id source is empty"))
	}
	if !a.SecretIDWrapped {
		return rotator.NewSecret(raw), nil
	}
	c.mu.Lock()
	if c.wrapTok == raw && !c.unwrapped.IsZero() {
		sid := c.unwrapped
		c.mu.Unlock()
		return sid, nil
	}
	c.mu.Unlock()
	uc, err := c.clientWithToken(rotator.Secret{})
	if err != nil {
		return rotator.Secret{}, err
	}
	// Before unwrapping, look the wrapping token up and check what created
	// it (Vault's guidance against substituted wrapping tokens, review
	// L12): it must be an AppRole secret-id of the configured mount. A
	// token wrapped by anyone through sys/wrapping/wrap is refused.
	if err := checkWrapCreationPath(ctx, uc, raw, c.appRoleMount()); err != nil {
		return rotator.Secret{}, err
	}
	// With no token of its own, the clone authenticates the unwrap call
	// with the wrapping token itself.
	s, err := uc.Logical().UnwrapWithContext(ctx, raw)
	if err != nil {
		return rotator.Secret{}, loginErr("approle unwrap", err)
	}
	if s == nil || s.Data == nil {
		return rotator.Secret{}, newOpError("login", "approle unwrap", ErrBadCredentials, errors.New("wrapping token held no data"))
	}
	sid, _ := s.Data["secret_id"].(string)
	if sid == "" {
		return rotator.Secret{}, newOpError("login", "approle unwrap", ErrBadCredentials, errors.New("wrapped response has no secret_id"))
	}
	c.mu.Lock()
	c.wrapTok, c.unwrapped = raw, rotator.NewSecret(sid)
	c.mu.Unlock()
	return rotator.NewSecret(sid), nil
}

// loginKubernetes logs in with the pod's service-account JWT, read now.
func (c *Client) loginKubernetes(ctx context.Context) (*vaultapi.Secret, error) {
	a := c.o.Auth
	m, err := kubernetes.NewKubernetesAuth(a.Role, kubernetes.WithServiceAccountTokenPath(a.JWTPath), kubernetes.WithMountPath(a.MountPath))
	if err != nil {
		return nil, fmt.Errorf("vault: login kubernetes: %w", err)
	}
	lc, err := c.clientWithToken(rotator.Secret{})
	if err != nil {
		return nil, err
	}
	s, err := m.Login(ctx, lc)
	if err != nil {
		return nil, loginErr(AuthKubernetes, err)
	}
	return s, nil
}

// maxJWT bounds a JWT read from a file.
const maxJWT = 64 << 10

// loginJWT logs in to the JWT/OIDC auth method with a token read now from
// its file or environment variable (a CI's OIDC token).
func (c *Client) loginJWT(ctx context.Context) (*vaultapi.Secret, error) {
	a := c.o.Auth
	var jwt string
	if a.JWTPath != "" {
		f, err := os.Open(a.JWTPath)
		if err != nil {
			return nil, fmt.Errorf("vault: login jwt: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(f, maxJWT+1))
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("vault: login jwt: read %s: %w", a.JWTPath, err)
		}
		if len(b) > maxJWT {
			return nil, newOpError("login", AuthJWT, ErrBadCredentials, fmt.Errorf("jwt file %s is larger than %d bytes", a.JWTPath, maxJWT))
		}
		jwt = strings.TrimSpace(string(b))
	} else {
		jwt = strings.TrimSpace(os.Getenv(a.JWTEnv))
	}
	if jwt == "" {
		src := a.JWTPath
		if src == "" {
			src = "$" + a.JWTEnv
		}
		return nil, newOpError("login", AuthJWT, ErrBadCredentials, fmt.Errorf("no jwt in %s", src))
	}
	lc, err := c.clientWithToken(rotator.Secret{})
	if err != nil {
		return nil, err
	}
	s, err := lc.Logical().WriteWithContext(ctx, "auth/"+strings.Trim(a.MountPath, "/")+"/login", map[string]any{"role": a.Role, "jwt": jwt})
	if err != nil {
		return nil, loginErr(AuthJWT, err)
	}
	return s, nil
}

// loginErr classifies a failed login: Vault refusing the credentials (400,
// 403) is ErrBadCredentials; everything else is classified as usual.
func loginErr(method string, err error) error {
	if isStatus(err, http.StatusBadRequest) || isStatus(err, http.StatusForbidden) {
		return &opError{op: "login", path: method, kinds: []error{ErrBadCredentials}, cause: err}
	}
	return wrapErr("login", method, err)
}

// clientWithToken returns a copy of the client's API client (same address,
// TLS, namespace, timeouts) carrying tok instead of the daemon's token; a
// zero tok gives a token-less client for logins and unwrapping.
func (c *Client) clientWithToken(tok rotator.Secret) (*vaultapi.Client, error) {
	cl, err := c.api.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("vault: clone client: %w", err)
	}
	// NewClient (inside Clone) picks up VAULT_TOKEN; replace it either way.
	cl.ClearToken()
	if !tok.IsZero() {
		cl.SetToken(tok.Reveal())
	}
	return cl, nil
}
