# Auditor: read the audit trail and the history of app paths; never a
# credential, never the journal (it holds staged secrets). Nothing here can
# compute a MAC or a signature: auditors check, only the daemon signs.

# The Vault sink's records and head, and the signed anchors of the file
# chains (<checkpoint_path>/anchors/<id>). No key lives under this path:
# config validation refuses a lab kv_path here.
path "secret/data/ecarotator/audit/*" {
  capabilities = ["read", "list"]
}
path "secret/metadata/ecarotator/audit/*" {
  capabilities = ["read", "list"]
}
path "secret/metadata/ecarotator/audit" {
  capabilities = ["list"]
}

# Which versions exist, when they were written, by which rotation
# (custom_metadata). The data paths are not readable.
path "secret/metadata/salesforce/*" {
  capabilities = ["read", "list"]
}
path "secret/metadata/salesforce" {
  capabilities = ["list"]
}

# Record MACs (audit.mac.transit_key): check them with transit/verify on
# the exact path the code calls. verify answers valid/invalid and computes
# nothing; transit/hmac (which would compute a MAC) is not granted.
path "transit/verify/ecarotator-audit/sha2-256" {
  capabilities = ["update"]
}

# Chain-head signatures (audit.mac.sign_key, ed25519): read the public key
# (`ecarotator audit public-key`; verify uses it offline). transit/sign is
# not granted, and the key is not exportable.
path "transit/keys/ecarotator-audit-sign" {
  capabilities = ["read"]
}

# `ecarotator audit fingerprint` reads an app's secret to recompute its
# fingerprint, so it needs read on that app's data path: grant it to a
# separate break-glass policy, not to every auditor.

# The daemon's read API and its auditor console (/ui/) answer only tokens
# with read on an app's status control path (the same check for both). The
# path holds nothing: the right is the permission, it reveals no secret.
path "secret/data/ecarotator/control/+/status" {
  capabilities = ["read"]
}
