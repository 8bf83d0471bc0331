package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/vault"
	"go.uber.org/zap"
)

// auditVaultClient builds a token-authenticated Vault client from the
// config for the auditor commands: VAULT_ADDR/VAULT_TOKEN/VAULT_CACERT/
// VAULT_NAMESPACE are already folded into cfg by config.Load. Auditors use
// their own token whatever vault.auth.method says; the daemon's
// AppRole/Kubernetes login is not needed here.
func auditVaultClient(cfg *config.Config) (*vault.Client, error) {
	c := *cfg
	c.Vault.Auth.Method = "token"
	vo, err := wire.VaultOptions(&c, zap.NewNop())
	if err != nil {
		return nil, configError{fmt.Errorf("%w: set VAULT_TOKEN (the auditor's token) or vault.auth.token_file", err)}
	}
	// No login and no lookup-self: the auditor policy grants neither.
	return vault.NewWithToken(vo)
}

// auditMAC resolves the MAC the audit commands check records with: a lab
// key file given on the command line (offline verification), else the
// config's audit.mac (Vault transit, checked through transit/verify; or,
// in lab mode, the key read from kv_path). Auditors never create a key.
func auditMAC(ctx context.Context, cfg *config.Config, vc *vault.Client, keyFile string) (audit.MACer, error) {
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--mac-key-file: %w", err)}
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, usageError{errors.New("--mac-key-file: the file must hold the base64 key")}
		}
		m, err := audit.LocalKey(key)
		if err != nil {
			return nil, usageError{err}
		}
		return m, nil
	}
	return wire.AuditMAC(ctx, vc, cfg.Vault.KVMount, cfg.Audit.MAC, false)
}
