# The ecarotator image: FROM scratch, nothing but the static binary, a CA
# bundle and a passwd/group naming the non-root user 65532. Built by
# scripts/images.sh (`make images`), which stages the build context: the
# binary is compiled on the host (CGO_ENABLED=0, -tags timetzdata so CRON_TZ=
# works without a zoneinfo tree), so no base image is ever pulled.
#
# Two COPY layers only: the storage driver may be vfs, which copies every
# layer in full. The second carries the writable state directory, owned by
# the runtime user so that a named volume mounted there inherits that owner.
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 state/ /var/lib/ecarotator/
ENV PATH=/usr/local/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /var/lib/ecarotator
# 9464: /healthz, /readyz, /metrics and the JSON API.
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/ecarotator"]
CMD ["--help"]
