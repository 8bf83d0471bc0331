package vault

import (
	"context"
	"fmt"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ecarotator/ecarotator/rotator"
)

// OpenJournals lists the apps that have a journal, in one Vault LIST of the
// state prefix's metadata (a finished rotation deletes its journal's
// metadata, so the list holds only open ones). Sub-folders (the per-Dev Hub
// exposure ledgers) are left out. It spares a start with thousands of apps
// a read per app.
func (c *Client) OpenJournals(ctx context.Context) (map[string]bool, error) {
	const op = "list journals"
	path := c.metaPath(strings.Trim(c.o.StatePrefix, "/"))
	var sec *vaultapi.Secret
	err := c.call(ctx, op, path, func() (err error) {
		sec, err = c.api.Logical().ListWithContext(ctx, path)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	if sec == nil || sec.Data == nil {
		return out, nil // nothing listed: no journal
	}
	keys, _ := sec.Data["keys"].([]any)
	for _, k := range keys {
		if name, ok := k.(string); ok && !strings.HasSuffix(name, "/") {
			out[name] = true
		}
	}
	return out, nil
}

// CheckToken reports whether the daemon's own token is still valid (a
// lookup-self), for readiness.
func (c *Client) CheckToken(ctx context.Context) error {
	const op = "token lookup-self"
	return c.call(ctx, op, "auth/token/lookup-self", func() error {
		_, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
		return err
	})
}

// CapabilitiesMany returns the capabilities the caller's token holds on
// each of paths (full API paths), in ONE request to sys/capabilities-self:
// the read API authorises a whole page of apps with one Vault call. An
// invalid caller token matches ErrBadCredentials.
func (c *Client) CapabilitiesMany(ctx context.Context, token rotator.Secret, paths []string) (map[string][]string, error) {
	const op = "capabilities"
	if token.IsZero() {
		return nil, newOpError(op, "", ErrBadCredentials, fmt.Errorf("no caller token"))
	}
	if len(paths) == 0 {
		return map[string][]string{}, nil
	}
	tc, err := c.clientWithToken(token)
	if err != nil {
		return nil, err
	}
	clean := make([]string, len(paths))
	for i, p := range paths {
		clean[i] = strings.TrimPrefix(p, "/")
	}
	sec, err := tc.Logical().WriteWithContext(ctx, "sys/capabilities-self", map[string]any{"paths": clean})
	if err != nil {
		return nil, callerErr(op, "sys/capabilities-self", err)
	}
	out := make(map[string][]string, len(paths))
	if sec == nil || sec.Data == nil {
		return out, nil
	}
	for i, p := range clean {
		raw, _ := sec.Data[p].([]any)
		if raw == nil && len(clean) == 1 {
			raw, _ = sec.Data["capabilities"].([]any)
		}
		caps := make([]string, 0, len(raw))
		for _, x := range raw {
			if s, ok := x.(string); ok {
				caps = append(caps, s)
			}
		}
		out[paths[i]] = caps
	}
	return out, nil
}
