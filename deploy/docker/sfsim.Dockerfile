# The Salesforce simulator image (docker-compose.yml, demos, tests): FROM
# scratch with the static sfsim binary, a CA bundle, the non-root user 65532
# and Debian's busybox-static (for the compose healthcheck's wget and a shell
# when debugging). Built by scripts/images.sh (`make images`).
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sfsim"]
