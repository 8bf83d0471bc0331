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
