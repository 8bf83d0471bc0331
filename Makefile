# ecarotator — see README.md. `make demo` runs the main job, `make test` the tests.
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
GO ?= go
# Go 1.27.3, fetched by the go command from the module proxy: the standard
# library of 1.26.8 carries the security review's reachable advisories
# (crypto/x509, net/http, HTTP/2, textproto, crypto/tls) and no fixed 1.26.x
# is served. A machine starts on its own Go and ignores go.mod's toolchain
# line (GOTOOLCHAIN=local), so it is set here, in .ci/run and in the README.
export GOTOOLCHAIN := go1.27.3
STATICCHECK_VERSION := v0.8.2
BIN := bin
VAULT_BIN := $(shell scripts/vault.sh path)
export ECAROTATOR_VAULT_BIN := $(VAULT_BIN)
# -race needs cgo; everything else builds with CGO_ENABLED=0.
TESTFLAGS ?= -race -count=1
INTEGRATION_TIMEOUT ?= 30m
# Run once, verbosely, in their own step of test-integration (their logs name
# the containers, the Vault version and the rotation seen through the API).
DOCKER_TESTS := TestDockerComposeStack|TestRotationAgainstTestcontainersVault

.PHONY: all build test test-unit test-integration test-deploy lint vault bench demo clean fuzz images

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

## test: unit + integration (integration runs against a real Vault; `make vault` builds it once)
test: test-unit test-deploy test-integration

test-unit:
	$(GO) test $(TESTFLAGS) ./...

## test-deploy: the Kubernetes manifests, strictly decoded into k8s.io/api types (tools/kubeval, its own module),
## and the example Prometheus rules through Prometheus's rule parser (tools/promrules, its own module)
test-deploy:
	cd tools/kubeval && $(GO) test -count=1 ./...
	cd tools/promrules && $(GO) test -count=1 ./...

test-integration: vault
	@echo "== real Vault check (server version below)"
	set -o pipefail; $(GO) test -count=1 -tags integration -v -run '^TestRealVaultKVv2CheckAndSet$$' ./integration/ | grep -E 'vaulttest:|^(--- |ok|FAIL|PASS)'
	@echo "== Docker: the compose stack and a testcontainers Vault (skip without an engine; ECAROTATOR_REQUIRE_DOCKER=1 fails instead)"
	set -o pipefail; $(GO) test $(TESTFLAGS) -tags integration -v -run '^($(DOCKER_TESTS))$$' ./integration/ | grep -E 'docker_[a-z_]+test.go|vaulttest:|^ {8}|^(--- |ok|FAIL|PASS)'
	$(GO) test $(TESTFLAGS) -tags integration -timeout $(INTEGRATION_TIMEOUT) -skip '^($(DOCKER_TESTS))$$' ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## images: the ecarotator, sfsim and Vault images FROM scratch, no pull (scripts/images.sh; needs a Docker engine)
images: vault
	scripts/images.sh

## vault: build the real Vault server once and cache it outside the checkout
# The test Vault keeps the machine's own Go, as it was proven with (it is a
# test fixture, never shipped).
vault:
	@GOTOOLCHAIN=local scripts/vault.sh build

bench: vault
	$(GO) test -run '^$$' -bench . -benchmem -tags integration ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzLoadBytes -fuzztime 30s ./internal/config

demo: build vault
	scripts/demo.sh

clean:
	rm -rf $(BIN)
