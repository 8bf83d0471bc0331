package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func (c *cli) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with the configuration file",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate",
		Short: "Load and validate the config; print every problem with its field path",
		Long: `Loads the config strictly (unknown keys are errors), applies defaults and
the environment (VAULT_ADDR, VAULT_NAMESPACE, VAULT_CACERT, ...), and checks
it. Every problem is printed with its field path; the exit code is 3 when
the config is invalid. Nothing is contacted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := c.setup(false)
			if err != nil {
				return err
			}
			log.Debug("config loaded", zap.String("path", cfg.Path), zap.Int("devhubs", len(cfg.DevHubs)), zap.Int("apps", len(cfg.Apps)))
			fmt.Fprintf(c.stdout, "%s: ok (%d Dev Hub(s), %d app(s))\n", c.cfgPath, len(cfg.DevHubs), len(cfg.Apps))
			return nil
		},
	})
	return cmd
}
