# MFA state for the daemon (attach together with ecarotator.hcl when the
# operator API is used): it verifies operators' TOTP codes and keeps
# two-person approvals. Paths assume kv_mount "secret" and mfa.seed_prefix
# "ecarotator/mfa".
#
# Seeds: read to check a code; update to store the last used time-step and
# the failure counter (check-and-set writes, so replicas agree). No create:
# enrolling is mfa-admin.hcl's job, and no delete.
path "secret/data/ecarotator/mfa/seeds/*" {
  capabilities = ["read", "update"]
}

# Two-person approvals: created pending, then approved or expired (CAS).
path "secret/data/ecarotator/mfa/approvals/*" {
  capabilities = ["create", "read", "update"]
}

# The CLI's break-glass commands (reveal, retire --revoke, approve) verify
# codes with the caller's own token, which then needs this policy too:
# give it only to break-glass operators, or use the daemon's API, where
# only the daemon's token touches seeds.
