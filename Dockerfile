# syntax=docker/dockerfile:1

# keyledger: one static binary (serve, validator, admin, audit, cert,
# healthcheck) on a distroless base: no shell, no package manager, a
# non-root user.
#
#   docker build -t keyledger .
#   docker run --rm -p 8080:8080 keyledger serve --http-addr 0.0.0.0:8080
#
# docker-compose.yml runs it on a three-node NATS cluster; docs/deployment.md
# explains both. cmd/keyledger/compose_test.go checks this file and runs its
# go build command.
#
# Health: the image has no shell, curl or wget. Orchestrators probe
# GET /healthz (the process is alive) and GET /readyz (caught up with the
# log; 503 until then) over HTTP; a probe that must run inside the
# container (docker compose) is `/keyledger healthcheck --url
# http://127.0.0.1:8080/readyz`. There is no HEALTHCHECK here because serve
# and validator listen on different ports: each service declares its own.

ARG GO_VERSION=1.26

# The build runs on the builder's own platform and cross-compiles, which a
# static Go binary allows (docker buildx build --platform linux/arm64 ...).
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
# Static (no cgo, so no libc to load), no local paths, no symbol or DWARF
# tables.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w" -o /out/keyledger ./cmd/keyledger
# Empty directories to create /data, the validators' /state and init's
# /secrets volumes from in the runtime stage.
RUN mkdir -p /out/data /out/state /out/secrets/keys /out/secrets/nats /out/secrets/operator /out/secrets/ledger /out/secrets/validator /out/secrets/auditor

# distroless "nonroot": CA certificates, tzdata and /etc/passwd with the
# nonroot user (65532), nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
# The binary stays root's: the service cannot replace it.
COPY --from=build /out/keyledger /keyledger
# serve's data directory (the session and ledger signing keys, each mode
# 0600), owned by the runtime user: COPY --chown creates /data with that
# owner, and a named volume mounted on /data starts out with it.
COPY --from=build --chown=65532:65532 /out/data /data
# A validator's --state-dir (docker-compose.yml), a named volume owned by
# the runtime user from the start.
COPY --from=build --chown=65532:65532 /out/state /state
# keyledger init's output directory (docker-compose.yml): each subdirectory
# is a named volume, which starts out owned by the runtime user too.
COPY --from=build --chown=65532:65532 /out/secrets /secrets
# Numeric, so that runAsNonRoot-style checks can verify it without
# /etc/passwd.
USER 65532:65532
# serve's default --data-dir (./data) and the admin commands' default
# --signing-key (data/ledger-ed25519.pem) both resolve under /data.
WORKDIR /
# 8080: serve. 8081: validator.
EXPOSE 8080 8081
ENTRYPOINT ["/keyledger"]
CMD ["help"]
