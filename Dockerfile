# syntax=docker/dockerfile:1
# The warden image (docs/deploy.md, "Container image"). Two targets:
#
#   docker build -t warden .                  static binary (CGO_ENABLED=0) on distroless:
#                                             server, gate, enroll with a real TPM
#                                             (/dev/tpmrm0) — the default, last stage.
#   docker build --target sim -t warden:sim . cgo build with the TPM 2.0 simulator
#                                             (--tpm sim, `warden demo`), on Debian slim
#                                             with OpenSSL's libcrypto.
#
# The simulator is Microsoft's reference TPM compiled with cgo against libcrypto; without
# cgo `--tpm sim` fails with a message saying so, and everything else works.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build-sim
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -ldflags="-s -w" -o /out/warden ./cmd/warden

FROM debian:bookworm-slim AS sim
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 65532 --no-create-home warden
COPY --from=build-sim /out/warden /usr/local/bin/warden
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/warden"]

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -ldflags="-s -w" -o /out/warden ./cmd/warden

FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=build /out/warden /usr/local/bin/warden
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/warden"]
