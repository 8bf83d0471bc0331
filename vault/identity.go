package vault

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ecarotator/ecarotator/rotator"
)

// Actions an operator's token is checked for on the control paths
// (<KVMount>/data/<ControlPrefix>/<app>/<action>); configs/policies/operator.hcl
// grants them.
const (
	ActionRotate = "rotate" // rotate now, outside the schedule
	ActionRevoke = "revoke" // revoke the previous pair (break-glass)
	ActionReveal = "reveal" // reveal a credential to the operator
)

// Default field names for ecarotator's own Dev Hub credentials.
const (
	FieldPrivateKey   = "private_key"
	FieldClientID     = "client_id"
	FieldClientSecret = "client_secret"
)

// LoadJWTKey reads the Dev Hub JWT-bearer private key (PEM) from field
// (default FieldPrivateKey) of the KV path. A missing or empty field matches
// rotator.ErrNotFound.
func (c *Client) LoadJWTKey(ctx context.Context, path, field string) (rotator.Secret, error) {
	if field == "" {
		field = FieldPrivateKey
	}
	rel := c.rel(path)
	v, err := c.readKV(ctx, "load jwt key", rel)
	if err != nil {
		return rotator.Secret{}, err
	}
	key := str(v.data, field)
	if key == "" {
		return rotator.Secret{}, newOpError("load jwt key", c.dataPath(rel), rotator.ErrNotFound, fmt.Errorf("no field %q", field))
	}
	return rotator.NewSecret(key), nil
}

// LoadClientCredentials reads a client id and secret (for the client
// credentials flow) from the KV path: fields client_id and client_secret,
// or consumer_key and consumer_secret as at an app path. A missing pair
// matches rotator.ErrNotFound.
func (c *Client) LoadClientCredentials(ctx context.Context, path string) (rotator.Credentials, error) {
	rel := c.rel(path)
	v, err := c.readKV(ctx, "load client credentials", rel)
	if err != nil {
		return rotator.Credentials{}, err
	}
	for _, f := range [][2]string{{FieldClientID, FieldClientSecret}, {FieldConsumerKey, FieldConsumerSecret}} {
		id, secret := str(v.data, f[0]), str(v.data, f[1])
		if id != "" && secret != "" {
			return rotator.Credentials{Key: id, Secret: rotator.NewSecret(secret)}, nil
		}
	}
	return rotator.Credentials{}, newOpError("load client credentials", c.dataPath(rel), rotator.ErrNotFound,
		fmt.Errorf("need fields %s and %s", FieldClientID, FieldClientSecret))
}

// Capabilities returns the capabilities the caller's token has on path (a
// full API path such as "secret/data/ecarotator/control/billing/rotate").
// It asks sys/capabilities-self with the caller's own token, so the daemon's
// policy needs no right to inspect other tokens (Vault's default policy
// grants every token capabilities-self). An invalid caller token matches
// ErrBadCredentials.
func (c *Client) Capabilities(ctx context.Context, token rotator.Secret, path string) ([]string, error) {
	const op = "capabilities"
	if token.IsZero() {
		return nil, newOpError(op, path, ErrBadCredentials, fmt.Errorf("no caller token"))
	}
	tc, err := c.clientWithToken(token)
	if err != nil {
		return nil, err
	}
	caps, err := tc.Sys().CapabilitiesSelfWithContext(ctx, strings.TrimPrefix(path, "/"))
	if err != nil {
		return nil, callerErr(op, path, err)
	}
	return caps, nil
}

// ControlPath is the control path checked for action on app.
func (c *Client) ControlPath(app, action string) string {
	return c.dataPath(c.o.ControlPrefix + "/" + strings.Trim(app, "/") + "/" + action)
}

// CanControl reports whether the caller's token may perform action on app:
// it must hold "update" (or be root) on ControlPath(app, action).
func (c *Client) CanControl(ctx context.Context, token rotator.Secret, app, action string) (bool, error) {
	caps, err := c.Capabilities(ctx, token, c.ControlPath(app, action))
	if err != nil {
		return false, err
	}
	return slices.Contains(caps, "update") || slices.Contains(caps, "root"), nil
}

// TokenIdentity describes the caller's token for the audit trail: its
// display name, followed by the entity id when the token has one
// ("approle-alice (entity 5f1c…)"); a token with neither is named by its
// accessor. An invalid token matches ErrBadCredentials.
func (c *Client) TokenIdentity(ctx context.Context, token rotator.Secret) (string, error) {
	const op = "token identity"
	if token.IsZero() {
		return "", newOpError(op, "", ErrBadCredentials, fmt.Errorf("no caller token"))
	}
	tc, err := c.clientWithToken(token)
	if err != nil {
		return "", err
	}
	s, err := tc.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return "", callerErr(op, "auth/token/lookup-self", err)
	}
	return identityOf(s), nil
}

func identityOf(s *vaultapi.Secret) string {
	if s == nil || s.Data == nil {
		return ""
	}
	name := str(s.Data, "display_name")
	entity := str(s.Data, "entity_id")
	switch {
	case name != "" && entity != "":
		return name + " (entity " + entity + ")"
	case name != "":
		return name
	case entity != "":
		return "entity " + entity
	}
	if acc := str(s.Data, "accessor"); acc != "" {
		return "accessor " + acc
	}
	return ""
}

// callerErr classifies a failure of a call made with a caller's token: a
// 403 there means the token itself is not valid.
func callerErr(op, path string, err error) error {
	if isStatus(err, http.StatusForbidden) {
		return &opError{op: op, path: path, kinds: []error{ErrBadCredentials}, cause: err}
	}
	return wrapErr(op, path, err)
}
