// Command vault builds the HashiCorp Vault server from its Go module so that
// tests, the demo and CI get a real Vault on machines without Docker.
//
// It lives in its own module so the product's go.mod never inherits Vault's
// dependency graph. See ../../Makefile (target vault) and scripts/vault.sh.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
