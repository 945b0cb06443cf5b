# Builds the rolegate binary and ships it with the presets.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin rolegate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/rolegate /usr/local/bin/rolegate
COPY config /etc/rolegate
USER 65534
EXPOSE 8080 9090
ENTRYPOINT ["rolegate"]
CMD ["serve", "--config", "/etc/rolegate/enterprise.yaml", "--listen", "0.0.0.0:8080", "--admin", "0.0.0.0:9090"]
