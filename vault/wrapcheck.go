package vault

import (
	"context"
	"fmt"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// appRoleMount is the AppRole auth mount, without slashes.
func (c *Client) appRoleMount() string {
	if m := strings.Trim(c.o.Auth.MountPath, "/"); m != "" {
		return m
	}
	return "approle"
}

// checkWrapCreationPath asks sys/wrapping/lookup (which needs no token and
// does not use up the wrapping token) what created wrapTok, and refuses
// anything but auth/<mount>/role/<role>/secret-id.
func checkWrapCreationPath(ctx context.Context, uc *vaultapi.Client, wrapTok, mount string) error {
	s, err := uc.Logical().WriteWithContext(ctx, "sys/wrapping/lookup", map[string]any{"token": wrapTok})
	if err != nil {
		return loginErr("approle wrapping lookup", err)
	}
	var path string
	if s != nil && s.Data != nil {
		path, _ = s.Data["creation_path"].(string)
	}
	if !isSecretIDPath(path, mount) {
		return newOpError("login", "approle wrapping lookup", ErrBadCredentials,
			fmt.Errorf("wrapping token was created at %q, not at auth/%s/role/<role>/secret-id", path, mount))
	}
	return nil
}

// isSecretIDPath reports whether p is auth/<mount>/role/<one segment>/secret-id.
func isSecretIDPath(p, mount string) bool {
	rest, ok := strings.CutPrefix(p, "auth/"+mount+"/role/")
	if !ok {
		return false
	}
	role, ok := strings.CutSuffix(rest, "/secret-id")
	return ok && role != "" && !strings.Contains(role, "/")
}
