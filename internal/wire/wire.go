// Package wire builds ecarotator's concrete adapters (Vault, Salesforce,
// audit) from a loaded config. cmd/ecarotator and the integration tests use
// it so that both run exactly the same wiring.
package wire

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce"
	"github.com/ecarotator/ecarotator/vault"
	"go.uber.org/zap"
)

// maxTokenFile bounds a Vault token file read.
const maxTokenFile = 64 << 10

// VaultOptions maps the config's vault section to the adapter's options.
func VaultOptions(cfg *config.Config, log *zap.Logger) (vault.Options, error) {
	v := cfg.Vault
	auth := vault.AuthOptions{Method: v.Auth.Method}
	switch v.Auth.Method {
	case "token":
		auth.Method = vault.AuthToken
		auth.Token = v.Auth.Token
		if auth.Token.IsZero() && v.Auth.TokenFile != "" {
			tok, err := readSmallFile(v.Auth.TokenFile)
			if err != nil {
				return vault.Options{}, fmt.Errorf("vault.auth.token_file: %w", err)
			}
			auth.Token = rotator.NewSecret(tok)
		}
		if auth.Token.IsZero() {
			return vault.Options{}, fmt.Errorf("vault auth: no token (set VAULT_TOKEN or vault.auth.token_file)")
		}
	case "approle":
		auth.Method = vault.AuthAppRole
		auth.MountPath = v.Auth.AppRole.Mount
		auth.RoleID = v.Auth.AppRole.RoleID
		auth.RoleIDFile = v.Auth.AppRole.RoleIDFile
		auth.SecretIDFile = v.Auth.AppRole.SecretIDFile
		auth.SecretIDEnv = v.Auth.AppRole.SecretIDEnv
		auth.SecretIDWrapped = v.Auth.AppRole.Wrapped
	case "kubernetes":
		auth.Method = vault.AuthKubernetes
		auth.MountPath = v.Auth.Kubernetes.Mount
		auth.Role = v.Auth.Kubernetes.Role
		auth.JWTPath = v.Auth.Kubernetes.JWTFile
	case "jwt":
		auth.Method = vault.AuthJWT
		auth.MountPath = v.Auth.JWT.Mount
		auth.Role = v.Auth.JWT.Role
		auth.JWTPath = v.Auth.JWT.TokenFile
		auth.JWTEnv = v.Auth.JWT.TokenEnv
	}
	return vault.Options{
		Address:   v.Address,
		Namespace: v.Namespace,
		TLS: vault.TLSOptions{
			CACert:     v.TLS.CACert,
			ClientCert: v.TLS.ClientCert,
			ClientKey:  v.TLS.ClientKey,
			ServerName: v.TLS.ServerName,
			SkipVerify: v.TLS.InsecureSkipVerify,
		},
		Auth:          auth,
		KVMount:       v.KVMount,
		StatePrefix:   v.StatePrefix,
		LockPrefix:    v.LockPrefix,
		ControlPrefix: v.ControlPrefix,
		MaxVersions:   v.MaxVersions,
		Timeout:       v.Timeout.D(),
		Logger:        log.Named("vault"),
	}, nil
}

// Vault logs in to Vault as the config says.
func Vault(ctx context.Context, cfg *config.Config, log *zap.Logger) (*vault.Client, error) {
	o, err := VaultOptions(cfg, log)
	if err != nil {
		return nil, err
	}
	return vault.New(ctx, o)
}

// DevHub builds the Salesforce client of one Dev Hub, loading its key
// material from Vault.
func DevHub(ctx context.Context, hub config.DevHub, vc *vault.Client, log *zap.Logger, hc *http.Client) (*salesforce.Client, error) {
	auth := salesforce.Auth{ClientID: hub.Auth.ClientID, Username: hub.Auth.Username, Basic: hub.Auth.Basic}
	loginURL := hub.LoginURL
	switch hub.Auth.Method {
	case "jwt":
		auth.Method = salesforce.AuthJWT
		key, err := vc.LoadJWTKey(ctx, hub.Auth.VaultPath, hub.Auth.VaultField)
		if err != nil {
			return nil, fmt.Errorf("devhub %s: load JWT key from vault path %s: %w", hub.Name, hub.Auth.VaultPath, err)
		}
		auth.PrivateKey = key
	case "client_credentials":
		auth.Method = salesforce.AuthClientCredentials
		creds, err := vc.LoadClientCredentials(ctx, hub.Auth.VaultPath)
		if err != nil {
			return nil, fmt.Errorf("devhub %s: load client credentials from vault path %s: %w", hub.Name, hub.Auth.VaultPath, err)
		}
		if creds.Key != "" && hub.Auth.ClientID != "" && creds.Key != hub.Auth.ClientID {
			return nil, fmt.Errorf("devhub %s: client id at vault path %s does not match auth.client_id", hub.Name, hub.Auth.VaultPath)
		}
		auth.ClientSecret = creds.Secret
		// Client credentials must go to the org's My Domain host.
		if hub.MyDomainURL != "" {
			loginURL = hub.MyDomainURL
		}
	default:
		return nil, fmt.Errorf("devhub %s: unknown auth method %q", hub.Name, hub.Auth.Method)
	}
	return salesforce.New(salesforce.Options{
		LoginURL:       loginURL,
		Audience:       hub.Auth.Audience,
		MyDomainURL:    hub.MyDomainURL,
		APIVersion:     hub.APIVersion,
		Auth:           auth,
		Logger:         log.Named("salesforce").With(zap.String("org", hub.Name)),
		Org:            hub.Name,
		RequestTimeout: hub.Timeout.D(),
		HTTPClient:     hc,
	})
}

// Verifier builds the token-request verifier (hc may be nil).
func Verifier(log *zap.Logger, hc *http.Client) *salesforce.Verifier {
	return salesforce.NewVerifier(salesforce.VerifierOptions{Logger: log.Named("verify"), HTTPClient: hc})
}

func readSmallFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, maxTokenFile+1)
	n, _ := f.Read(buf)
	if n > maxTokenFile {
		return "", fmt.Errorf("%s: larger than %d bytes", path, maxTokenFile)
	}
	return strings.TrimSpace(string(buf[:n])), nil
}
