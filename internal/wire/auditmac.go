package wire

import (
	"context"
	"errors"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/config"
)

// This file turns audit.mac into the audit package's MACer, Signer and
// SigVerifier. It lives in the wiring so that audit/ does not import the
// config (issue 14).

// AuditLabMode reports whether audit.mac selects the KV-key lab mode (one
// symmetric key for records and heads) instead of transit.
func AuditLabMode(m config.AuditMAC) bool { return m.KVPath != "" }

// AuditMAC returns the per-record MACer that audit.mac selects: the
// transit HMAC key (the default), or the KV key at kv_path (lab mode).
// With create (the daemon) a missing KV key is generated (audit.EnsureKVKey);
// without it (auditors) a missing key is audit.ErrNoKey. A transit MACer used by
// an auditor only calls transit/verify, which computes no MAC.
func AuditMAC(ctx context.Context, c audit.Vault, kvMount string, m config.AuditMAC, create bool) (audit.MACer, error) {
	if c == nil {
		return nil, errors.New("audit: AuditMAC needs a Vault client")
	}
	if !AuditLabMode(m) {
		key := m.TransitKey
		if key == "" {
			key = config.DefaultAuditTransitKey
		}
		return audit.Transit(c, m.TransitMount, key), nil
	}
	load := audit.LoadKVKey
	if create {
		load = audit.EnsureKVKey
	}
	key, err := load(ctx, c, kvMount, m.KVPath)
	if err != nil {
		return nil, err
	}
	return audit.LocalKey(key)
}

// AuditSigner returns the writer's chain-head signer: the transit
// ed25519 key sign_key, or (lab mode) the record MAC itself.
func AuditSigner(c audit.Vault, m config.AuditMAC, mac audit.MACer) audit.Signer {
	if AuditLabMode(m) {
		return audit.MACSigner(mac)
	}
	return audit.TransitSigner(c, m.TransitMount, auditSignKey(m))
}

// AuditSigVerifier returns what an auditor checks chain-head
// signatures with: the public key of sign_key read from Vault (read on
// <mount>/keys/<key> only), or (lab mode) the KV key's MAC.
func AuditSigVerifier(ctx context.Context, c audit.Vault, m config.AuditMAC, mac audit.MACer) (audit.SigVerifier, error) {
	if AuditLabMode(m) {
		if mac == nil {
			return nil, errors.New("audit: lab mode (audit.mac.kv_path) checks heads with the KV key, which is not loaded")
		}
		return audit.MACSigner(mac), nil
	}
	return audit.ReadTransitPublicKeys(ctx, c, m.TransitMount, auditSignKey(m))
}

func auditSignKey(m config.AuditMAC) string {
	if m.SignKey == "" {
		return config.DefaultAuditSignKey
	}
	return m.SignKey
}
