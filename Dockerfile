# syntax=docker/dockerfile:1
# Build: docker build -t herald .
# Run:   docker run -p 8080:8080 -v herald-data:/var/lib/herald -v $PWD/herald.yaml:/etc/herald/herald.yaml:ro \
#          -e HERALD_INGEST_TOKEN=... herald
# The config's server.listen must be 0.0.0.0:8080 inside a container (or pass --listen, as below).
# With server.public_listen: 0.0.0.0:8081 (the status pages only), publish that port too (-p 8081:8081)
# and keep 8080 (the API) off the internet.
# A cluster node on PostgreSQL: docker run … herald serve --listen 0.0.0.0:8080 --store postgres://…
# (run `herald migrate --store postgres://…` once first; nothing then needs the volume).

# The toolchain CI builds and tests with (Swift 6.3).
FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcurl4-openssl-dev libsqlite3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The manifest names test targets and the store benchmark program too, so their folders must
# exist before SwiftPM loads it; the EmbedOpenAPI plugin (Plugins/) builds openapi.json into the
# binary.
COPY Package.swift openapi.json ./
COPY Sources ./Sources
COPY Plugins ./Plugins
COPY Tests ./Tests
COPY Benchmarks/StoreBench ./Benchmarks/StoreBench
RUN swift package resolve
RUN swift build -c release --product herald --static-swift-stdlib \
 && install -D .build/release/herald /out/herald

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcurl4 libsqlite3-0 ca-certificates curl tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/herald --create-home herald
COPY --from=build /out/herald /usr/local/bin/herald
COPY channels.yaml.example /etc/herald/channels.yaml.example
USER herald
WORKDIR /var/lib/herald
ENV HERALD_CONFIG=/etc/herald/herald.yaml
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["herald"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--store", "/var/lib/herald/herald.sqlite"]
