# Auditor: read the audit trail and the history of app paths; never a
# credential, never the journal (it holds staged secrets).

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

# Transit MAC mode (audit.mac.transit_key): verify record MACs and
# checkpoints without ever holding the key, and derive the fingerprint key.
path "transit/verify/ecarotator-audit" {
  capabilities = ["update"]
}
path "transit/hmac/ecarotator-audit" {
  capabilities = ["update"]
}

# `ecarotator audit fingerprint` reads an app's secret to recompute its
# fingerprint, so it needs read on that app's data path: grant it to a
# separate break-glass policy, not to every auditor.
