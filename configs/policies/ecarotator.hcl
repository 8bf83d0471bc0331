# ecarotator daemon: least privilege for rotating Salesforce External Client
# App secrets. Paths assume the defaults (KV v2 at secret/, app paths under
# salesforce/, state/locks/audit under ecarotator/); change them together with
# the daemon's configuration.

# App paths that applications read: read the current version, write new
# versions with check-and-set. No delete or destroy: history stays.
path "secret/data/salesforce/*" {
  capabilities = ["create", "read", "update"]
}

# Their metadata: the managed-by marker, rotation id and times in
# custom_metadata (written with POST and JSON merge patch), max_versions,
# version history for status. Only custom_metadata may change freely:
# max_versions is pinned to the configured vault.max_versions (default 10;
# change both together) and delete_version_after is not allowed, so a
# stolen daemon token cannot shrink or expire an app's history (review L6).
path "secret/metadata/salesforce/*" {
  capabilities = ["create", "read", "update", "patch", "list"]
  allowed_parameters = {
    "custom_metadata" = []
    "max_versions"    = ["10"]
  }
}

# Journal of in-flight rotations (holds the staged secret until commit).
# "delete" on the metadata removes every version when a rotation finishes.
path "secret/data/ecarotator/state/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/ecarotator/state/*" {
  capabilities = ["read", "delete", "list"]
}

# Leases (one per app). Released by writing a new version, never deleted, so
# fencing tokens keep growing.
path "secret/data/ecarotator/locks/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/ecarotator/locks/*" {
  capabilities = ["read", "list"]
}

# Its own Dev Hub credentials (JWT private key or client id/secret), put
# there by the security team. Read only. (devhubs/, as every shipped
# config's devhubs[].auth.vault_path; review L5.)
path "secret/data/ecarotator/devhubs/*" {
  capabilities = ["read"]
}

# Webhook HMAC keys (notifications.webhooks[].secret_vault_path), put there
# by the security team. Read only.
path "secret/data/ecarotator/webhooks/*" {
  capabilities = ["read"]
}

# Audit trail sink in Vault: records are created once (check-and-set 0)
# and never rewritten; the head is advanced with check-and-set.
path "secret/data/ecarotator/audit/records/*" {
  capabilities = ["create", "read"]
}
path "secret/data/ecarotator/audit/head" {
  capabilities = ["create", "read", "update"]
}
# Anchors of the file chains: the signed head, advanced with check-and-set.
path "secret/data/ecarotator/audit/checkpoint/anchors/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/ecarotator/audit/*" {
  capabilities = ["read", "list"]
}

# MAC of audit records with a transit key the daemon can use but never read
# or export (transit/hmac/<key>/sha2-256).
path "transit/hmac/ecarotator-audit/*" {
  capabilities = ["update"]
}
# Signature of the chain head with the ed25519 key only the daemon uses;
# auditors hold the public key.
path "transit/sign/ecarotator-audit-sign" {
  capabilities = ["update"]
}

# Its own token: renew and look up (the default policy grants these too;
# listed so the policy works for tokens created with no_default_policy).
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}
