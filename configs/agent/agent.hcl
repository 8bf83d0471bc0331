# Vault Agent for an application that reads its Salesforce External Client
# App credentials from the path ecarotator maintains. It logs in with
# AppRole, keeps its token in a file sink, and renders
# salesforce-credentials.ctmpl into an env file the application reads.
#
# Give the AppRole role only the app-reader policy for this one app
# (configs/policies/app-reader.hcl with APP_NAME replaced).
#
# Run: vault agent -config=/etc/vault-agent/agent.hcl

vault {
  address = "https://vault.example.com:8200"
  # ca_cert = "/etc/vault-agent/vault-ca.pem"
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path                   = "/etc/vault-agent/role-id"
      secret_id_file_path                 = "/etc/vault-agent/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }

  sink "file" {
    config = {
      path = "/run/vault-agent/token"
      mode = 0600
    }
  }
}

template_config {
  # KV v2 secrets have no lease: the agent re-reads them on this interval.
  # It bounds how long after a rotation the file still shows the old
  # current pair, and how long after previous_valid_until the previous pair
  # is still listed. Keep it well below the overlap window.
  static_secret_render_interval = "1m"
  exit_on_retry_failure         = true
}

template {
  source      = "/etc/vault-agent/salesforce-credentials.ctmpl"
  destination = "/run/billing/salesforce.env"
  perms       = "0600"
  # command   = "systemctl reload billing"  # tell the app to re-read the file
}
