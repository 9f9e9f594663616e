#!/usr/bin/env bash
# Fails when packages/protocol/src/gen differs from a fresh `buf generate` of proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r packages/protocol/src/gen "$tmp/committed"
pnpm exec buf lint
pnpm run -s gen
if ! diff -r "$tmp/committed" packages/protocol/src/gen; then
  echo "check-gen: generated code is stale; run 'pnpm gen' and commit the result" >&2
  exit 1
fi
echo "check-gen: generated code is current"
