# MFA administrator: enrolls and disables operators
# (`ecarotator mfa enroll <operator>`, `ecarotator mfa disable <operator>`).
# Who may enroll whom is exactly this policy: narrow the "*" to named
# operators (Vault identity entity ids: seeds are keyed by entity) to split
# the duty. The administrator never reads a seed: enrolling writes a new one
# (shown once on the administrator's terminal, for the operator to scan),
# disabling deletes it by its metadata. "create" only: an enrolled
# operator's seed cannot be overwritten (which would also clear a lockout)
# without the audited disable + enroll (review L7).
path "secret/data/ecarotator/mfa/seeds/*" {
  capabilities = ["create"]
}
path "secret/metadata/ecarotator/mfa/seeds/*" {
  capabilities = ["read", "delete"]
}

# The CLI records mfa.enrolled / mfa.disabled in the audit trail; grant the
# audit trail's MAC key and sink paths as in ecarotator.hcl (or run the
# command where the daemon's audit configuration is usable).
