#!/usr/bin/env bash
# Installs what the build, the tests and the demo need and that a fresh machine may lack:
# Java and Maven (the local Kafka broker), a C toolchain (librdkafka and SQLite are compiled by
# cargo), kcat (topic inspection), Prometheus and promtool (the monitoring test runs a real
# Prometheus on deploy/prometheus.yml), docker-compose (validates docker-compose.kafka.yml; no
# Docker engine needed), the PostgreSQL server (e2e/tests/postgres.rs starts its own in a
# temporary folder), Chromium and its WebDriver (e2e/tests/web.rs renders the web view in a
# headless browser). Debian packages via apt-get; Rust itself must be installed (rustup);
# crates and the Kafka jars are fetched by cargo and Maven on first use.
# systemd-analyze (package systemd) is used when present and not installed here.
set -euo pipefail

need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v perl >/dev/null 2>&1 || need+=(perl)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v kcat >/dev/null 2>&1 || need+=(kcat)
# Debian's prometheus package also installs (and, where systemd runs, enables) a
# prometheus.service on :9090; `systemctl disable --now prometheus` if you don't want it.
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || need+=(prometheus)
{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } || need+=(docker-compose)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || need+=(chromium chromium-driver)

if [ ${#need[@]} -gt 0 ]; then
  echo "ensure-deps: installing ${need[*]} with apt-get" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || { echo "ensure-deps: cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2; exit 1; }
fi
