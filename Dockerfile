# hexrepo: one small image that serves (and builds) a Hex repository.
#   docker build -t hexrepo .
#   docker run -p 8000:8000 -v hexrepo-data:/data hexrepo
# The volume holds the signing key (/data/private_key.pem, created on first start) and the
# repository folder (/data/public, PUBLIC_DIR). Configure with the guide's variables:
# PORT, PUBLIC_DIR, AUTH_USERNAME, AUTH_PASSWORD.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p hexrepo \
    && install -m 0755 target/release/hexrepo /usr/local/bin/hexrepo

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311+deb12u1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 hexrepo \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --create-home hexrepo
COPY --from=build /usr/local/bin/hexrepo /usr/local/bin/hexrepo
USER 10001:10001
WORKDIR /data
# HEXREPO_PRIVATE_KEY is the key's path, not the key.
# hadolint ignore=DL3064
ENV PORT=8000 \
    PUBLIC_DIR=/data/public \
    HEXREPO_PRIVATE_KEY=/data/private_key.pem
VOLUME ["/data"]
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/hexrepo"]
CMD ["serve"]
