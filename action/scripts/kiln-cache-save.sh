#!/usr/bin/env bash
# After a failed `kiln build`, saves what is still worth saving (`kiln cache save
# --after-failure`: a cargo cache whose downloads all finished, the rule `kiln build`
# applies itself), as rust-cache's post step does; a successful build saved them itself. Never fails
# the job a second time: a cache that cannot be saved is a warning.
#
# Environment: the same KILN_INPUT_* variables as kiln-build.sh; only the flags
# `kiln cache save` takes are passed.
set -uo pipefail

set -- cache save --after-failure
# The lines below are written by `cargo run -p xtask -- generate`.
# BEGIN GENERATED cache-save-args
[ -z "${KILN_INPUT_PACKAGE:-}" ] || set -- "$@" --package="$KILN_INPUT_PACKAGE"
[ -z "${KILN_INPUT_BIN:-}" ] || set -- "$@" --bin="$KILN_INPUT_BIN"
[ -z "${KILN_INPUT_FEATURES:-}" ] || set -- "$@" --features="$KILN_INPUT_FEATURES"
[ "${KILN_INPUT_NO_DEFAULT_FEATURES:-}" != true ] || set -- "$@" --no-default-features
[ "${KILN_INPUT_ALLOW_TOOLCHAIN_PATH:-}" != true ] || set -- "$@" --allow-toolchain-path
[ -z "${KILN_INPUT_RUST_TOOLCHAIN:-}" ] || set -- "$@" --rust-toolchain="$KILN_INPUT_RUST_TOOLCHAIN"
[ -z "${KILN_INPUT_ENTRY:-}" ] || set -- "$@" --entry="$KILN_INPUT_ENTRY"
[ -z "${KILN_INPUT_LAYOUT:-}" ] || set -- "$@" --layout="$KILN_INPUT_LAYOUT"
[ -z "${KILN_INPUT_TAG:-}" ] || set -- "$@" --tag="$KILN_INPUT_TAG"
[ -z "${KILN_INPUT_CACHE:-}" ] || set -- "$@" --cache="$KILN_INPUT_CACHE"
[ "${KILN_INPUT_NO_CACHE:-}" != true ] || set -- "$@" --no-cache
[ -z "${KILN_INPUT_CACHE_PREFIX:-}" ] || set -- "$@" --cache-prefix="$KILN_INPUT_CACHE_PREFIX"
[ -z "${KILN_INPUT_CACHE_SCOPE:-}" ] || set -- "$@" --cache-scope="$KILN_INPUT_CACHE_SCOPE"
[ -z "${KILN_INPUT_CACHE_READ_SCOPE:-}" ] || set -- "$@" --cache-read-scope="$KILN_INPUT_CACHE_READ_SCOPE"
[ -z "${KILN_INPUT_INSECURE_REGISTRY:-}" ] || set -- "$@" --insecure-registry="$KILN_INPUT_INSECURE_REGISTRY"
[ -z "${KILN_INPUT_REGISTRY_TIMEOUT:-}" ] || set -- "$@" --registry-timeout="$KILN_INPUT_REGISTRY_TIMEOUT"
[ -z "${KILN_INPUT_REGISTRY_RETRIES:-}" ] || set -- "$@" --registry-retries="$KILN_INPUT_REGISTRY_RETRIES"
[ "${KILN_INPUT_ALLOW_INSECURE_AUTH:-}" != true ] || set -- "$@" --allow-insecure-auth
set -- "$@" -- "${KILN_INPUT_PATH:-.}"
# END GENERATED cache-save-args

if [ "${KILN_INPUT_NO_CACHE:-false}" = true ]; then
  exit 0
fi
kiln "$@" || echo "::warning title=kiln cache::saving the cache after the failed build did not work"
