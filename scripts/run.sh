#!/usr/bin/env bash
# Sets up, builds and runs the gateway on its default config. Extra arguments go to `hypergate run`
# (e.g. scripts/run.sh --set admin.listen=127.0.0.1:19901).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target hypergate
exec build/release/framework/gateway/hypergate run --config configs/default.toml "$@"
