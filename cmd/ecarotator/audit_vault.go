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
	vaultapi "github.com/hashicorp/vault/api"
)

// auditVaultClient builds a token-authenticated Vault client from the
// config for the auditor commands: VAULT_ADDR/VAULT_TOKEN/VAULT_CACERT/
// VAULT_NAMESPACE are already folded into cfg by config.Load. Auditors use
// their own token; the daemon's AppRole/Kubernetes login lives in the vault
// adapter and is not needed here.
func auditVaultClient(cfg *config.Config) (*vaultapi.Client, error) {
	vc := vaultapi.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("vault: client config: %w", vc.Error)
	}
	vc.Address = cfg.Vault.Address
	vc.Timeout = cfg.Vault.Timeout.D()
	vc.MaxRetries = 2
	t := cfg.Vault.TLS
	if err := vc.ConfigureTLS(&vaultapi.TLSConfig{CACert: t.CACert, ClientCert: t.ClientCert, ClientKey: t.ClientKey,
		TLSServerName: t.ServerName, Insecure: t.InsecureSkipVerify}); err != nil {
		return nil, fmt.Errorf("vault: TLS config: %w", err)
	}
	c, err := vaultapi.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault: client: %w", err)
	}
	c.ClearNamespace()
	if cfg.Vault.Namespace != "" {
		c.SetNamespace(cfg.Vault.Namespace)
	}
	tok := cfg.Vault.Auth.Token.Reveal()
	if tok == "" && cfg.Vault.Auth.TokenFile != "" {
		b, err := os.ReadFile(cfg.Vault.Auth.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("vault: read token file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" {
		return nil, configError{errors.New("vault: no token: set VAULT_TOKEN (the auditor's token) or vault.auth.token_file")}
	}
	c.SetToken(tok)
	return c, nil
}

// auditMAC resolves the MAC the audit commands check records with: a lab
// key file given on the command line (offline verification), else the
// config's audit.mac (Vault transit, checked through transit/verify; or,
// in lab mode, the key read from kv_path). Auditors never create a key.
func auditMAC(ctx context.Context, cfg *config.Config, vc *vaultapi.Client, keyFile string) (audit.MACer, error) {
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
	return audit.MACFromConfig(ctx, vc, cfg.Vault.KVMount, cfg.Audit.MAC, false)
}
