#!/usr/bin/env bash
# Compiles Erc20.sol with solc-js 0.8.37 from the npm registry (optimizer on, 200 runs) and
# writes its creation bytecode (hex) to Erc20.bin. Needs Node.js and npm.
set -euo pipefail
cd "$(dirname "$0")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
npm install --silent --prefix "$work" solc@0.8.37
"$work/node_modules/.bin/solcjs" --bin --optimize --optimize-runs 200 -o "$work/out" Erc20.sol
cp "$work"/out/*Erc20.bin Erc20.bin
echo "wrote $(pwd)/Erc20.bin ($(wc -c < Erc20.bin) hex characters)"
