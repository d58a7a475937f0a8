# syntax=docker/dockerfile:1
# One image, three binaries: azure-driver-shim (resource-driver API),
# azure-driver-controller (the AzureResource operator) and azure-driver-admission (the
# validating admission webhook). The chart picks one per Deployment.
#
#   docker build -t azure-driver:<version> .
#
# The base images can be replaced (a mirror, or images made locally as
# e2e/scripts/build-image.sh does): --build-arg BUILDER_IMAGE=... RUNTIME_IMAGE=...

ARG RUST_VERSION=1.89
ARG DEBIAN_RELEASE=bookworm
ARG BUILDER_IMAGE=rust:${RUST_VERSION}-${DEBIAN_RELEASE}
ARG RUNTIME_IMAGE=debian:${DEBIAN_RELEASE}-slim

FROM ${BUILDER_IMAGE} AS builder
# librdkafka is compiled by rdkafka-sys (C toolchain, OpenSSL and zlib headers).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config python3 libssl-dev zlib1g-dev libsasl2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p azure-driver-controller -p azure-driver-shim \
 && mkdir -p /out \
 && cp target/release/azure-driver-controller target/release/azure-driver-shim \
       target/release/azure-driver-admission /out/

FROM ${RUNTIME_IMAGE} AS runtime
# Runtime libraries only: OpenSSL for librdkafka's TLS, the CA store for Azure and Kafka.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/azure-driver-controller /out/azure-driver-shim /out/azure-driver-admission /usr/local/bin/
# Numeric non-root user (works with runAsNonRoot and OpenShift's arbitrary UIDs, group 0).
# Nothing is written outside /tmp, which the chart mounts as an emptyDir, so the root
# filesystem can be read-only.
USER 65532:0
WORKDIR /var/azuredriver
EXPOSE 7275 8080 8443
ENTRYPOINT ["/usr/local/bin/azure-driver-shim"]
