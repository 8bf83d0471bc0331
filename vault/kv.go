package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ecarotator/ecarotator/rotator"
)

// kvVersion is one read of a KV v2 path's latest version.
type kvVersion struct {
	data    map[string]any
	version int
	created time.Time
	custom  map[string]string
}

// kvMeta is a KV v2 path's metadata.
type kvMeta struct {
	current     int
	maxVersions int
	custom      map[string]string
	versions    []rotator.VersionInfo
}

// rel turns a path given by a caller into one relative to the KV mount.
// It accepts "salesforce/billing", "/salesforce/billing",
// "secret/salesforce/billing", "secret/data/salesforce/billing" and
// "secret/metadata/salesforce/billing".
func (c *Client) rel(p string) string {
	p = strings.Trim(p, "/")
	for _, pre := range []string{c.mount + "/data/", c.mount + "/metadata/", c.mount + "/"} {
		if strings.HasPrefix(p, pre) {
			return strings.TrimPrefix(p, pre)
		}
	}
	return p
}

func (c *Client) dataPath(rel string) string { return c.mount + "/data/" + rel }
func (c *Client) metaPath(rel string) string { return c.mount + "/metadata/" + rel }

// readKV reads the latest version of rel. When the path has no live latest
// version it returns an error matching rotator.ErrNotFound together with the
// version number Vault still reports (0 when the path never existed), which
// is what a check-and-set write must name.
func (c *Client) readKV(ctx context.Context, op, rel string) (kvVersion, error) {
	var s *vaultapi.Secret
	err := c.call(ctx, op, c.dataPath(rel), func() error {
		var err error
		s, err = c.api.Logical().ReadWithContext(ctx, c.dataPath(rel))
		return err
	})
	if err != nil {
		return kvVersion{}, err
	}
	if s == nil || s.Data == nil {
		return kvVersion{}, newOpError(op, c.dataPath(rel), rotator.ErrNotFound)
	}
	var v kvVersion
	if md, ok := s.Data["metadata"].(map[string]any); ok {
		v.version = toInt(md["version"])
		v.created = toTime(md["created_time"])
		v.custom = toStringMap(md["custom_metadata"])
	}
	data, ok := s.Data["data"].(map[string]any)
	if !ok {
		// Deleted or destroyed latest version: Vault answers 404 with the
		// metadata of that version and null data.
		return v, newOpError(op, c.dataPath(rel), rotator.ErrNotFound)
	}
	v.data = data
	return v, nil
}

// writeKV writes data as a new version of rel if the current version is
// still cas (0: the path has no version yet). It returns the new version.
func (c *Client) writeKV(ctx context.Context, op, rel string, data map[string]any, cas int) (int, error) {
	body := map[string]any{"options": map[string]any{"cas": cas}, "data": data}
	var s *vaultapi.Secret
	err := c.call(ctx, op, c.dataPath(rel), func() error {
		var err error
		s, err = c.api.Logical().WriteWithContext(ctx, c.dataPath(rel), body)
		return err
	})
	if err != nil {
		return 0, err
	}
	if s == nil || s.Data == nil {
		return 0, newOpError(op, c.dataPath(rel), errors.New("no version in Vault's answer"))
	}
	return toInt(s.Data["version"]), nil
}

// readMeta reads rel's metadata (rotator.ErrNotFound when the path has none).
func (c *Client) readMeta(ctx context.Context, op, rel string) (kvMeta, error) {
	var s *vaultapi.Secret
	err := c.call(ctx, op, c.metaPath(rel), func() error {
		var err error
		s, err = c.api.Logical().ReadWithContext(ctx, c.metaPath(rel))
		return err
	})
	if err != nil {
		return kvMeta{}, err
	}
	if s == nil || s.Data == nil {
		return kvMeta{}, newOpError(op, c.metaPath(rel), rotator.ErrNotFound)
	}
	m := kvMeta{
		current:     toInt(s.Data["current_version"]),
		maxVersions: toInt(s.Data["max_versions"]),
		custom:      toStringMap(s.Data["custom_metadata"]),
	}
	if vs, ok := s.Data["versions"].(map[string]any); ok {
		now := c.now()
		for k, raw := range vs {
			n, err := strconv.Atoi(k)
			if err != nil {
				continue
			}
			vi := rotator.VersionInfo{Version: n}
			if vm, ok := raw.(map[string]any); ok {
				vi.CreatedAt = toTime(vm["created_time"])
				if dt := toTime(vm["deletion_time"]); !dt.IsZero() && !dt.After(now) {
					vi.Deleted = true
				}
				vi.Destroyed, _ = vm["destroyed"].(bool)
			}
			m.versions = append(m.versions, vi)
		}
		sort.Slice(m.versions, func(i, j int) bool { return m.versions[i].Version < m.versions[j].Version })
	}
	return m, nil
}

// writeMeta replaces the metadata fields named in body (POST semantics:
// custom_metadata, when given, replaces the whole map).
func (c *Client) writeMeta(ctx context.Context, op, rel string, body map[string]any) error {
	return c.call(ctx, op, c.metaPath(rel), func() error {
		_, err := c.api.Logical().WriteWithContext(ctx, c.metaPath(rel), body)
		return err
	})
}

// patchMeta merges body into rel's metadata (JSON merge patch: keys of
// custom_metadata are added or replaced, others are kept).
func (c *Client) patchMeta(ctx context.Context, op, rel string, body map[string]any) error {
	return c.call(ctx, op, c.metaPath(rel), func() error {
		_, err := c.api.Logical().JSONMergePatch(ctx, c.metaPath(rel), body)
		return err
	})
}

// deleteMeta removes rel with every version and its metadata.
func (c *Client) deleteMeta(ctx context.Context, op, rel string) error {
	return c.call(ctx, op, c.metaPath(rel), func() error {
		_, err := c.api.Logical().DeleteWithContext(ctx, c.metaPath(rel))
		return err
	})
}

// toInt reads a number from Vault's JSON (json.Number with UseNumber).
func toInt(v any) int {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	case float64:
		return int(n)
	case int:
		return n
	case int64:
		return int(n)
	case string:
		i, _ := strconv.Atoi(n)
		return i
	}
	return 0
}

// toTime parses an RFC 3339 time; empty or malformed gives the zero time.
func toTime(v any) time.Time {
	s, _ := v.(string)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func toStringMap(v any) map[string]string {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		if s, ok := x.(string); ok {
			out[k] = s
		}
	}
	return out
}

// str reads a string field of KV data.
func str(data map[string]any, key string) string {
	s, _ := data[key].(string)
	return s
}

// formatTime renders t for the fields applications read: RFC 3339 in UTC
// to the second ("2026-11-26T01:02:03Z", easy to parse in any language and
// in a Vault Agent template), "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// parseTimeField parses an RFC 3339 data field; "" is the zero time.
func parseTimeField(data map[string]any, key string) (time.Time, error) {
	s := str(data, key)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("field %s: %w", key, err)
	}
	return t, nil
}
