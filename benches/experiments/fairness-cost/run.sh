#!/usr/bin/env bash
# Measures what drain-gate's reader bound costs under drains: the report's
# drain-every-M workload for the stock gate, the same gate patched so queued
# readers are woken to retry instead of granted on their behalf
# (barging-readers.patch: no reader bound), tokio's Semaphore and
# async-lock's RwLock, interleaved.
#
#   ./run.sh TASKS ROUNDS DRAIN_EVERY [timed]
#
# `timed` also times every read (adds two clock reads per operation to all
# four) to show the wait tails the bound caps.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf target/drain-gate-barging
mkdir -p target
cp -r ../../../drain-gate target/drain-gate-barging
(
  cd target/drain-gate-barging
  rm -rf tests benches examples
  patch -s -p2 < ../../barging-readers.patch
  # A standalone package: no workspace inheritance, another name.
  sed -i -e 's/^name = "drain-gate"/name = "drain-gate-barging"/' \
    -e 's/^\([a-z-]*\)\.workspace = true/\1 = "0"/' \
    -e '/^readme/d' -e '/^\[lints\]/,$d' Cargo.toml
  sed -i -e 's/^edition = "0"/edition = "2024"/' -e '/^rust-version = "0"/d' \
    -e '/^license = "0"/d' -e '/^repository = "0"/d' Cargo.toml
)
cargo build --release --quiet
exec target/release/fairness-cost "$@"
