# A local Vault image for machines that cannot pull hashicorp/vault: FROM
# scratch with the Vault server binary that `make vault` builds and caches
# (scripts/vault.sh path), Debian's busybox-static as /bin/sh (the compose
# one-shot init is a shell script), a CA bundle and the non-root user 65532.
# Built by scripts/images.sh (`make images`) in one layer: the binary is
# ~180 MB and the storage driver may be vfs.
#
# It behaves like the official image for what this project uses: the default
# command is a dev server, and Vault itself reads VAULT_DEV_ROOT_TOKEN_ID and
# VAULT_DEV_LISTEN_ADDRESS (testcontainers-go's Vault module sets the first).
FROM scratch
COPY rootfs/ /
ENV PATH=/bin \
    HOME=/tmp \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    VAULT_DEV_LISTEN_ADDRESS=0.0.0.0:8200
USER 65532:65532
EXPOSE 8200
ENTRYPOINT ["/bin/vault"]
CMD ["server", "-dev", "-dev-no-store-token"]
