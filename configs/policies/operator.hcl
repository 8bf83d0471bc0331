# Security-team operator: may ask the daemon to act on apps and see their
# status, but never reads a credential from Vault directly.
#
# The daemon authorises "rotate now", "revoke previous" and "reveal" by
# checking the caller's token for "update" on
#   secret/data/ecarotator/control/<app>/<action>
# (sys/capabilities-self). Grant a narrower set of apps or actions by
# replacing "+" with app names. MFA (TOTP) and the two-person rule are
# enforced by the daemon on top of this.
path "secret/data/ecarotator/control/+/rotate" {
  capabilities = ["update"]
}
path "secret/data/ecarotator/control/+/revoke" {
  capabilities = ["update"]
}
# Reveal through the daemon (POST /api/v1/apps/<app>/reveal, or
# `ecarotator reveal --server`): the daemon checks the TOTP code, audits and
# hands the credential back in a single-use wrapping token. The operator
# never reads the app's path itself.
path "secret/data/ecarotator/control/+/reveal" {
  capabilities = ["update"]
}
# The daemon's read API (GET /api/v1/apps, /apps/<app>, /plan) answers
# only tokens with read here (security review M2).
path "secret/data/ecarotator/control/+/status" {
  capabilities = ["read"]
}

# Status: versions, rotation ids and times of app paths (metadata only).
path "secret/metadata/salesforce/*" {
  capabilities = ["read", "list"]
}
path "secret/metadata/salesforce" {
  capabilities = ["list"]
}

# Who holds which lease (holder id, expiry; no secrets).
path "secret/data/ecarotator/locks/*" {
  capabilities = ["read"]
}
