package audit

import (
	"context"
	"errors"

	"github.com/ecarotator/ecarotator/internal/config"
	vaultapi "github.com/hashicorp/vault/api"
)

// DefaultKVKeyPath is where the MAC key lives (field "key", base64) when
// audit.mac names neither a transit key nor a KV path: the config's own
// default, repeated here for callers that build an AuditMAC by hand.
const DefaultKVKeyPath = config.DefaultAuditMACKeyPath

// MACFromConfig returns the MACer that audit.mac selects: the transit key
// when transit_key is set, else the KV key at kv_path (DefaultKVKeyPath when
// empty). With create (the daemon) a missing KV key is generated
// (EnsureKVKey); without it (auditors) a missing key is ErrNoKey.
func MACFromConfig(ctx context.Context, c *vaultapi.Client, kvMount string, m config.AuditMAC, create bool) (MACer, error) {
	if c == nil {
		return nil, errors.New("audit: MACFromConfig needs a Vault client")
	}
	if m.TransitKey != "" {
		return Transit(c, m.TransitMount, m.TransitKey), nil
	}
	p := m.KVPath
	if p == "" {
		p = DefaultKVKeyPath
	}
	load := LoadKVKey
	if create {
		load = EnsureKVKey
	}
	key, err := load(ctx, c, kvMount, p)
	if err != nil {
		return nil, err
	}
	return LocalKey(key)
}
