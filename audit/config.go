package audit

import (
	"context"
	"errors"

	"github.com/ecarotator/ecarotator/internal/config"
	vaultapi "github.com/hashicorp/vault/api"
)

// LabMode reports whether audit.mac selects the KV-key lab mode (one
// symmetric key for records and heads) instead of transit.
func LabMode(m config.AuditMAC) bool { return m.KVPath != "" }

// MACFromConfig returns the per-record MACer that audit.mac selects: the
// transit HMAC key (the default), or the KV key at kv_path (lab mode).
// With create (the daemon) a missing KV key is generated (EnsureKVKey);
// without it (auditors) a missing key is ErrNoKey. A transit MACer used by
// an auditor only calls transit/verify, which computes no MAC.
func MACFromConfig(ctx context.Context, c *vaultapi.Client, kvMount string, m config.AuditMAC, create bool) (MACer, error) {
	if c == nil {
		return nil, errors.New("audit: MACFromConfig needs a Vault client")
	}
	if !LabMode(m) {
		key := m.TransitKey
		if key == "" {
			key = config.DefaultAuditTransitKey
		}
		return Transit(c, m.TransitMount, key), nil
	}
	load := LoadKVKey
	if create {
		load = EnsureKVKey
	}
	key, err := load(ctx, c, kvMount, m.KVPath)
	if err != nil {
		return nil, err
	}
	return LocalKey(key)
}

// SignerFromConfig returns the writer's chain-head signer: the transit
// ed25519 key sign_key, or (lab mode) the record MAC itself.
func SignerFromConfig(c *vaultapi.Client, m config.AuditMAC, mac MACer) Signer {
	if LabMode(m) {
		return MACSigner(mac)
	}
	return TransitSigner(c, m.TransitMount, signKey(m))
}

// SigVerifierFromConfig returns what an auditor checks chain-head
// signatures with: the public key of sign_key read from Vault (read on
// <mount>/keys/<key> only), or (lab mode) the KV key's MAC.
func SigVerifierFromConfig(ctx context.Context, c *vaultapi.Client, m config.AuditMAC, mac MACer) (SigVerifier, error) {
	if LabMode(m) {
		if mac == nil {
			return nil, errors.New("audit: lab mode (audit.mac.kv_path) checks heads with the KV key, which is not loaded")
		}
		return MACSigner(mac), nil
	}
	return ReadTransitPublicKeys(ctx, c, m.TransitMount, signKey(m))
}

func signKey(m config.AuditMAC) string {
	if m.SignKey == "" {
		return config.DefaultAuditSignKey
	}
	return m.SignKey
}
