#!/usr/bin/env bash
# Installs what building Wisp needs on a new Debian/Ubuntu machine; safe to run again.
#  - clang, libclang-dev, protobuf-compiler: kaspad (RocksDB bindings, protobuf) builds from source
#  - the wasm32-unknown-unknown Rust target: contracts compile to WebAssembly
#  - chromium: the explorer's browser tests drive Debian's Chromium headless (explorer/)
#  - Node.js 20.19 or later with npm must already be there (the TypeScript client and explorer)
set -euo pipefail

missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown Rust target" >&2
  rustup target add wasm32-unknown-unknown
fi
node_ok=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number); console.log(a>20||(a===20&&b>=19)?"yes":"no")' 2>/dev/null || echo no)
if [ "$node_ok" != yes ] || ! command -v npm >/dev/null 2>&1; then
  echo "setup: Node.js 20.19 or later with npm is needed for sdk/ts and explorer/ (found: $(node --version 2>/dev/null || echo none)); install it from nodejs.org or your distribution" >&2
  exit 1
fi
echo "setup: ok (clang, protoc, libclang, chromium, Node.js $(node --version), wasm32 target present)" >&2
