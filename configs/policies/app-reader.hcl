# Read access to ONE application's Salesforce credentials.
#
# A template: replace APP_NAME with the app's name as configured in
# ecarotator (for example: sed 's/APP_NAME/billing/g' app-reader.hcl) and
# write it as its own policy (vault policy write app-reader-billing -).

path "secret/data/salesforce/APP_NAME" {
  capabilities = ["read"]
}
