#!/bin/sh
# Vault side of the CI examples: one jwt auth mount per CI (each trusts one
# issuer), a role bound to the repository, branch and environment, and the
# ecarotator policy (configs/policies/ecarotator.hcl: what a rotation needs,
# nothing more). Run once with an admin token; VAULT_ADDR must be set.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

vault policy write ecarotator "$here/../../configs/policies/ecarotator.hcl"

# GitHub Actions
vault auth enable -path=jwt-github jwt
vault write auth/jwt-github/config \
  oidc_discovery_url=https://token.actions.githubusercontent.com \
  bound_issuer=https://token.actions.githubusercontent.com
vault write auth/jwt-github/role/ecarotator-github @"$here/github/vault-role.json"

# GitLab CI (gitlab.com; use your instance's URL for self-managed GitLab)
vault auth enable -path=jwt-gitlab jwt
vault write auth/jwt-gitlab/config \
  oidc_discovery_url=https://gitlab.com \
  bound_issuer=https://gitlab.com
vault write auth/jwt-gitlab/role/ecarotator-gitlab @"$here/gitlab/vault-role.json"
