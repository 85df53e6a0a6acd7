#!/bin/sh
# Builds {{name}}.wasm beside {{name}}.toml (`portico plugin install {{name}}.toml` uploads both).
set -eu
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{crate}}.wasm" {{name}}.wasm
