package vault

import (
	"context"
	"fmt"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// Wrap stores data in Vault's cubbyhole behind a single-use response-
// wrapping token valid for ttl (sys/wrapping/wrap, granted to every token
// by Vault's default policy) and returns that token. The daemon uses it to
// hand a revealed credential to an operator without the secret itself
// crossing its HTTP answer: the operator unwraps it once with Unwrap.
func (c *Client) Wrap(ctx context.Context, data map[string]any, ttl time.Duration) (rotator.Secret, error) {
	const op = "wrap"
	cl, err := c.api.CloneWithHeaders()
	if err != nil {
		return rotator.Secret{}, fmt.Errorf("vault: clone client: %w", err)
	}
	cl.SetToken(c.api.Token())
	wrapTTL := fmt.Sprintf("%ds", max(1, int(ttl/time.Second)))
	cl.SetWrappingLookupFunc(func(string, string) string { return wrapTTL })
	sec, err := cl.Logical().WriteWithContext(ctx, "sys/wrapping/wrap", data)
	if err != nil {
		return rotator.Secret{}, wrapErr(op, "sys/wrapping/wrap", err)
	}
	if sec == nil || sec.WrapInfo == nil || sec.WrapInfo.Token == "" {
		return rotator.Secret{}, newOpError(op, "sys/wrapping/wrap", rotator.ErrUnreachable, fmt.Errorf("no wrapping token in the answer"))
	}
	return rotator.NewSecret(sec.WrapInfo.Token), nil
}

// Unwrap redeems a wrapping token (it needs no other credential) and
// returns the wrapped data. A token already used or expired matches
// ErrBadCredentials.
func (c *Client) Unwrap(ctx context.Context, wrapToken rotator.Secret) (map[string]any, error) {
	const op = "unwrap"
	cl, err := c.clientWithToken(rotator.Secret{})
	if err != nil {
		return nil, err
	}
	sec, err := cl.Logical().UnwrapWithContext(ctx, wrapToken.Reveal())
	if err != nil {
		return nil, callerErr(op, "sys/wrapping/unwrap", err)
	}
	if sec == nil || sec.Data == nil {
		return nil, newOpError(op, "sys/wrapping/unwrap", rotator.ErrNotFound, fmt.Errorf("nothing wrapped"))
	}
	return sec.Data, nil
}

// UnwrapFromEnv redeems a wrapping token against the Vault the environment
// names (VAULT_ADDR, VAULT_CACERT, …) with no token of its own: the CLI's
// reveal through a daemon, whose caller may have no config.
func UnwrapFromEnv(ctx context.Context, wrapToken rotator.Secret) (map[string]any, error) {
	c, err := build(Options{Auth: AuthOptions{Method: AuthToken}})
	if err != nil {
		return nil, err
	}
	return c.Unwrap(ctx, wrapToken)
}
