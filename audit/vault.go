package audit

import (
	"context"
	"errors"
	"strings"

	"github.com/ecarotator/ecarotator/rotator"
)

// Vault is what the audit trail needs from Vault: KV v2 documents with
// check-and-set (the Vault sink, the anchors, a lab MAC key) and transit
// (HMAC, verify, sign, public keys). The vault adapter's *vault.Client
// provides it; errors match rotator.ErrNotFound (no live version) and
// rotator.ErrConflict (check-and-set mismatch). This package never talks to
// Vault's SDK itself (issue 14).
type Vault interface {
	ReadDoc(ctx context.Context, path string) (map[string]any, int, error)
	WriteDoc(ctx context.Context, path string, data map[string]any, cas int) (int, error)
	WriteAPI(ctx context.Context, path string, body map[string]any) (map[string]any, error)
	ReadAPI(ctx context.Context, path string) (map[string]any, error)
}

// kvPath names p under the KV mount as the Vault gateway expects it.
func kvPath(mount, p string) string {
	return strings.Trim(mount, "/") + "/" + strings.Trim(p, "/")
}

func isNotFound(err error) bool { return errors.Is(err, rotator.ErrNotFound) }

// isCASConflict reports whether err is Vault refusing a KV v2 write because
// its check-and-set version did not match.
func isCASConflict(err error) bool { return errors.Is(err, rotator.ErrConflict) }
