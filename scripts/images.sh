#!/usr/bin/env bash
# `make images`: builds the three images docker-compose.yml runs, FROM
# scratch, without pulling anything:
#   localhost/ecarotator:dev            the daemon + CLI (static binary, CA bundle, user 65532)
#   localhost/ecarotator-sfsim:dev      the Salesforce simulator (+ busybox-static)
#   localhost/ecarotator-vault:VERSION  the Vault server cached by `make vault` (+ busybox-static)
# The binaries are compiled here with the host's Go toolchain; each image's
# build context is a staged root file system in a temporary folder. The
# `localhost/` prefix keeps Docker from ever resolving these names on Docker
# Hub: a missing image fails instead of pulling someone else's.
#
# Needs: a Docker engine, Go, a CA bundle (/etc/ssl/certs/ca-certificates.crt)
# and a static busybox (Debian: apt-get install busybox-static). Override
# with CA_BUNDLE=, BUSYBOX=, IMAGE_TAG= (default dev), VERSION=.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

vault_bin=$(scripts/vault.sh path)
vault_version=$(sed -n 's/^const Version = "\(.*\)"$/\1/p' internal/vaulttest/vaulttest.go)
tag=${IMAGE_TAG:-dev}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
busybox=${BUSYBOX:-$(command -v busybox || true)}

die() { echo "images: $*" >&2; exit 1; }
command -v docker >/dev/null || die "no docker CLI (Debian: apt-get install docker.io)"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "no Docker engine answers (start dockerd)"
[ -r "$ca" ] || die "no CA bundle at $ca (Debian: apt-get install ca-certificates; or set CA_BUNDLE=)"
[ -n "$busybox" ] && [ -x "$busybox" ] || die "no busybox (Debian: apt-get install busybox-static; or set BUSYBOX=)"
# A dynamically linked busybox (Debian's `busybox` package) cannot run in a
# scratch image. `file` tells when it is installed; the smoke test at the end
# catches it otherwise.
if command -v file >/dev/null && ! file -L "$busybox" | grep -q 'statically linked'; then
  die "$busybox is dynamically linked; install busybox-static (or set BUSYBOX=)"
fi
[ -x "$vault_bin" ] || die "no Vault binary at $vault_bin (make vault)"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# rootfs DIR: the files every image shares: passwd/group naming root and the
# non-root runtime user 65532, the CA bundle, a world-writable sticky /tmp.
rootfs() {
  mkdir -p "$1/etc/ssl/certs" "$1/tmp"
  chmod 1777 "$1/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$1/etc/group"
  cp "$ca" "$1/etc/ssl/certs/ca-certificates.crt"
  chmod 0644 "$1/etc/passwd" "$1/etc/group" "$1/etc/ssl/certs/ca-certificates.crt"
}
# with_busybox DIR: /bin/busybox plus /bin/sh and /bin/wget as symlinks
# (the build context keeps symlinks; no shell is needed to create them).
with_busybox() {
  mkdir -p "$1/bin"
  install -m 0755 "$busybox" "$1/bin/busybox"
  ln -s busybox "$1/bin/sh"
  ln -s busybox "$1/bin/wget"
}
# build NAME DOCKERFILE: docker build of the staged context $stage/NAME.
build() {
  cp "deploy/docker/$2" "$stage/$1/Dockerfile"
  echo "images: building $3"
  # The legacy builder is enough for FROM scratch + COPY and needs no
  # buildx plugin; BuildKit would work as well.
  local out
  if ! out=$(DOCKER_BUILDKIT=0 docker build -q \
    --label org.opencontainers.image.source=ecarotator \
    --label "org.opencontainers.image.version=$4" \
    -t "$3" "$stage/$1" 2>&1); then
    echo "$out" >&2; die "docker build of $3 failed"
  fi
}

echo "images: compiling ecarotator and sfsim (static, version $version)"
mkdir -p "$stage/bin"
CGO_ENABLED=0 go build -trimpath -tags timetzdata -ldflags "-s -w -X main.version=$version" \
  -o "$stage/bin/" ./cmd/ecarotator ./cmd/sfsim

rootfs "$stage/ecarotator/rootfs"
install -D -m 0755 "$stage/bin/ecarotator" "$stage/ecarotator/rootfs/usr/local/bin/ecarotator"
mkdir -p "$stage/ecarotator/rootfs/etc/ecarotator" "$stage/ecarotator/state"
build ecarotator ecarotator.Dockerfile "localhost/ecarotator:$tag" "$version"

rootfs "$stage/sfsim/rootfs"
with_busybox "$stage/sfsim/rootfs"
install -D -m 0755 "$stage/bin/sfsim" "$stage/sfsim/rootfs/usr/local/bin/sfsim"
build sfsim sfsim.Dockerfile "localhost/ecarotator-sfsim:$tag" "$version"

rootfs "$stage/vault/rootfs"
with_busybox "$stage/vault/rootfs"
# A hard link when the cache is on the same file system: no 180 MB copy.
ln "$vault_bin" "$stage/vault/rootfs/bin/vault" 2>/dev/null || cp "$vault_bin" "$stage/vault/rootfs/bin/vault"
build vault vault.Dockerfile "localhost/ecarotator-vault:$vault_version" "$vault_version"

# Smoke test: each image starts its program as the non-root user.
echo "images: checking them"
docker run --rm "localhost/ecarotator:$tag" --version
docker run --rm --entrypoint /bin/sh "localhost/ecarotator-sfsim:$tag" -c 'id -u; sfsim -h 2>&1 | head -1' | tr '\n' ' '; echo
docker run --rm "localhost/ecarotator-vault:$vault_version" version
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.ID}}  {{.Size}}' | grep -E "^localhost/ecarotator(-sfsim|-vault)?:($tag|$vault_version) "
