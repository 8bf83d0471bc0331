package main

import "github.com/spf13/cobra"

// auditCommand is replaced by the audit trail's commands (verify, list, show,
// export, report, fingerprint).
func (c *cli) auditCommand() *cobra.Command {
	return notImplemented("audit", "Verify, list, show, export and report on the audit trail", "audit issue")
}
