# syntax=docker/dockerfile:1
#
# One image with both binaries: ecarotator (daemon + CLI) and sfsim (the
# Salesforce simulator used by docker-compose.yml). Static builds
# (CGO_ENABLED=0) with the time zone database compiled in (-tags
# timetzdata), so CRON_TZ= schedules work on any base image.
#
#   docker build -t ecarotator:dev --build-arg VERSION=$(git describe --always) .

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
# Dependencies first: this layer is reused until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -tags timetzdata \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/ ./cmd/ecarotator ./cmd/sfsim

# Alpine rather than distroless: compose healthchecks need wget.
# /etc/.demo is where configs/demo.yaml's audit file (../.demo/audit.log)
# lands when the config is mounted at /etc/ecarotator/demo.yaml.
FROM alpine:3.22 AS runtime
RUN apk add --no-cache ca-certificates \
 && addgroup -S -g 65532 ecarotator \
 && adduser -S -D -H -u 65532 -G ecarotator ecarotator \
 && mkdir -p /etc/ecarotator /etc/sfsim /etc/.demo /var/lib/ecarotator \
 && chown ecarotator:ecarotator /etc/ecarotator /etc/.demo /var/lib/ecarotator
COPY --from=build /out/ecarotator /out/sfsim /usr/local/bin/
USER 65532:65532
WORKDIR /var/lib/ecarotator
# 9464: /healthz, /readyz, /metrics and the JSON API.
EXPOSE 9464
CMD ["ecarotator", "--help"]
