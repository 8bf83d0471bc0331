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
