#!/usr/bin/env bash
# Installs what building Wisp needs on a new Debian/Ubuntu machine; safe to run again.
#  - clang, libclang-dev, protobuf-compiler: kaspad (RocksDB bindings, protobuf) builds from source
#  - the wasm32-unknown-unknown Rust target: contracts compile to WebAssembly
set -euo pipefail

missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq clang libclang-dev protobuf-compiler >/dev/null
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown Rust target" >&2
  rustup target add wasm32-unknown-unknown
fi
echo "setup: ok (clang, protoc, libclang, wasm32 target present)" >&2
