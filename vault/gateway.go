package vault

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ecarotator/ecarotator/rotator"
)

// OpenJournals lists the apps that have a journal, in one Vault LIST of the
// state prefix's metadata (a finished rotation deletes its journal's
// metadata, so the list holds only open ones). Sub-folders (the per-Dev Hub
// secret-access ledger) are left out. It spares a start with thousands of apps
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

// Documents: KV v2 reads and check-and-set writes for the packages that keep
// their own state in Vault (the MFA seeds and approvals, the audit sink and
// anchors). Paths are relative to the client's KV mount (or carry it, as
// "secret/ecarotator/mfa/…"). Errors match rotator.ErrNotFound (no live
// version), rotator.ErrConflict (check-and-set mismatch),
// rotator.ErrPermission (policy) and rotator.ErrUnreachable, as for every
// other call of this package.

// ReadDoc returns the latest version's data and version number.
func (c *Client) ReadDoc(ctx context.Context, path string) (map[string]any, int, error) {
	v, err := c.readKV(ctx, "read", c.rel(path))
	if err != nil {
		return nil, 0, err
	}
	return v.data, v.version, nil
}

// WriteDoc writes data as a new version if the current version is still
// cas (0: the path must not exist) and returns the new version.
func (c *Client) WriteDoc(ctx context.Context, path string, data map[string]any, cas int) (int, error) {
	return c.writeKV(ctx, "write", c.rel(path), data, cas)
}

// DocExists reads only the path's metadata (a caller allowed to delete a
// document need not be allowed to read it); rotator.ErrNotFound when it has
// none.
func (c *Client) DocExists(ctx context.Context, path string) error {
	_, err := c.readMeta(ctx, "read metadata", c.rel(path))
	return err
}

// DeleteDoc removes the path with every version and its metadata.
func (c *Client) DeleteDoc(ctx context.Context, path string) error {
	return c.deleteMeta(ctx, "delete", c.rel(path))
}

// WriteAPI writes body to an API path outside KV (a transit HMAC, sign or
// verify) and returns the answer's data (nil when Vault answered none).
func (c *Client) WriteAPI(ctx context.Context, path string, body map[string]any) (map[string]any, error) {
	var s *vaultapi.Secret
	err := c.call(ctx, "write", path, func() (err error) {
		s, err = c.api.Logical().WriteWithContext(ctx, path, body)
		return err
	})
	if err != nil || s == nil {
		return nil, err
	}
	return s.Data, nil
}

// ReadAPI reads an API path outside KV (a transit key's public keys);
// rotator.ErrNotFound when Vault answers nothing.
func (c *Client) ReadAPI(ctx context.Context, path string) (map[string]any, error) {
	var s *vaultapi.Secret
	err := c.call(ctx, "read", path, func() (err error) {
		s, err = c.api.Logical().ReadWithContext(ctx, path)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s == nil || s.Data == nil {
		return nil, newOpError("read", path, rotator.ErrNotFound)
	}
	return s.Data, nil
}

// FromAPI wraps a vault/api client that already carries its token (tests,
// and tools that were handed one) as a Client of the KV mount kvMount
// ("" = DefaultKVMount). It does not log in; the token is never renewed.
func FromAPI(api *vaultapi.Client, kvMount string) *Client {
	o := Options{KVMount: kvMount, Auth: AuthOptions{Method: AuthToken}}.withDefaults()
	return &Client{api: api, o: o, log: o.Logger.Named("vault"), now: o.Now, mount: o.KVMount, loginCh: make(chan struct{}, 1)}
}

// DocVersion is one version of a KV v2 document.
type DocVersion struct {
	Data    map[string]any
	Version int
	Created time.Time
}

// ReadDocVersion reads version of path (0: the latest); rotator.ErrNotFound
// when that version has no live data.
func (c *Client) ReadDocVersion(ctx context.Context, path string, version int) (DocVersion, error) {
	rel := c.rel(path)
	if version <= 0 {
		v, err := c.readKV(ctx, "read", rel)
		return DocVersion{Data: v.data, Version: v.version, Created: v.created}, err
	}
	const op = "read version"
	var s *vaultapi.Secret
	err := c.call(ctx, op, c.dataPath(rel), func() (err error) {
		s, err = c.api.Logical().ReadWithDataWithContext(ctx, c.dataPath(rel), url.Values{"version": {strconv.Itoa(version)}})
		return err
	})
	if err != nil {
		return DocVersion{}, err
	}
	if s == nil || s.Data == nil {
		return DocVersion{}, newOpError(op, c.dataPath(rel), rotator.ErrNotFound)
	}
	var d DocVersion
	if md, ok := s.Data["metadata"].(map[string]any); ok {
		d.Version, d.Created = toInt(md["version"]), toTime(md["created_time"])
	}
	data, ok := s.Data["data"].(map[string]any)
	if !ok {
		return d, newOpError(op, c.dataPath(rel), rotator.ErrNotFound)
	}
	d.Data = data
	return d, nil
}

// Token is the token the client currently uses (the caller's identity for
// the CLI's operator commands).
func (c *Client) Token() rotator.Secret { return rotator.NewSecret(c.api.Token()) }

// As returns a client that makes its calls with token instead of the
// daemon's own (same address, TLS, namespace and KV mount; no login, no
// renewal): for work done on a caller's behalf and with the caller's
// rights, such as an auditor's `audit verify` from the console.
func (c *Client) As(token rotator.Secret) (*Client, error) {
	api, err := c.clientWithToken(token)
	if err != nil {
		return nil, err
	}
	return FromAPI(api, c.mount), nil
}
