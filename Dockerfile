# citystream in a container: a build stage with the Rust toolchain, and a
# small runtime stage holding only the binary (a broker, the simulator,
# the subscribers and the console are all `citystream` subcommands).
#   docker build -t citystream .
#   docker compose up        # three brokers, the simulation, the console on :6001-6003

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin citystream \
 && cp target/release/citystream /citystream

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/citystream citystream
COPY --from=build /citystream /usr/local/bin/citystream
USER citystream
WORKDIR /var/lib/citystream
VOLUME /var/lib/citystream
# 9400: native protocol (TCP) and gossip (UDP); 6001: HTTP API and console.
EXPOSE 9400/tcp 9400/udp 6001/tcp 1883
ENTRYPOINT ["citystream"]
CMD ["--help"]
