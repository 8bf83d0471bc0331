#!/usr/bin/env bash
# Builds the real Vault server from tools/vault (its own Go module) once and
# caches the binary outside the checkout, keyed by version, so fresh clones,
# CI and later sessions reuse it.
#   scripts/vault.sh path   print the cached binary's path
#   scripts/vault.sh build  build it unless already cached (default)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^const Version = "\(.*\)"$/\1/p' "$here/internal/vaulttest/vaulttest.go")
bin="${ECAROTATOR_VAULT_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/ecarotator/vault/$version/vault}"
case "${1:-build}" in
path) echo "$bin"; exit 0 ;;
build) ;;
*) echo "usage: $0 [path|build]" >&2; exit 2 ;;
esac
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
  echo "vault $version: cached at $bin"
  exit 0
fi
echo "vault $version: building from source (first time: ~3 GB of modules, a few minutes)..."
mkdir -p "$(dirname "$bin")"
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$here/tools/vault" && CGO_ENABLED=0 go build -mod=mod -trimpath -tags minimal -o "$tmp" .)
mv "$tmp" "$bin"
"$bin" version
