#!/usr/bin/env bash
# Runs `kiln build` (or `kiln publish`, the `command` input) with the action's inputs. kiln does the whole pipeline and writes
# the step's outputs ($GITHUB_OUTPUT), the job summary ($GITHUB_STEP_SUMMARY) and the
# pull request comment itself; this script only turns inputs into arguments and says
# where the JSON summary is.
#
# Environment: one KILN_INPUT_* variable per input (see action.yml), plus the
# secrets kiln reads itself (GITHUB_TOKEN, KILN_REGISTRY_*, KILN_SIGNING_*).
set -euo pipefail

summary="${RUNNER_TEMP:?}/kiln-summary.json"
echo "summary-file=$summary" >>"${GITHUB_OUTPUT:?}"

# Whether this run is for a pull request from a fork, whose GITHUB_TOKEN is read-only.
fork_pull_request() {
  [ "${GITHUB_EVENT_NAME:-}" = pull_request ] && [ -f "${GITHUB_EVENT_PATH:-}" ] || return 1
  python3 - "$GITHUB_EVENT_PATH" <<'PY'
import json, sys
event = json.load(open(sys.argv[1], encoding="utf-8"))
head = ((event.get("pull_request") or {}).get("head") or {}).get("repo") or {}
base = event.get("repository") or {}
sys.exit(0 if head.get("full_name") and head.get("full_name") != base.get("full_name") else 1)
PY
}

# A fork's pull request cannot push: build and store the artifact, and say why it was
# not pushed, rather than fail on the registry's 403.
if [ -n "${KILN_INPUT_PUSH:-}" ] && [ "${KILN_INPUT_COMMAND:-build}" = build ] && fork_pull_request; then
  echo "::notice title=kiln::This pull request comes from a fork, whose token cannot push: the artifact is built and stored, not pushed to $KILN_INPUT_PUSH."
  KILN_INPUT_PUSH=""
fi

set -- "${KILN_INPUT_COMMAND:-build}" --platform=github --summary-file="$summary"
# The lines below are written by `cargo run -p xtask -- generate`.
# BEGIN GENERATED args
[ -z "${KILN_INPUT_PACKAGE:-}" ] || set -- "$@" --package="$KILN_INPUT_PACKAGE"
[ -z "${KILN_INPUT_BIN:-}" ] || set -- "$@" --bin="$KILN_INPUT_BIN"
[ -z "${KILN_INPUT_FEATURES:-}" ] || set -- "$@" --features="$KILN_INPUT_FEATURES"
[ "${KILN_INPUT_NO_DEFAULT_FEATURES:-}" != true ] || set -- "$@" --no-default-features
[ "${KILN_INPUT_ALLOW_TOOLCHAIN_PATH:-}" != true ] || set -- "$@" --allow-toolchain-path
[ -z "${KILN_INPUT_RUST_TOOLCHAIN:-}" ] || set -- "$@" --rust-toolchain="$KILN_INPUT_RUST_TOOLCHAIN"
[ -z "${KILN_INPUT_ENTRY:-}" ] || set -- "$@" --entry="$KILN_INPUT_ENTRY"
[ -z "${KILN_INPUT_LAYOUT:-}" ] || set -- "$@" --layout="$KILN_INPUT_LAYOUT"
[ -z "${KILN_INPUT_TAG:-}" ] || set -- "$@" --tag="$KILN_INPUT_TAG"
[ "${KILN_INPUT_DRY_RUN:-}" != true ] || set -- "$@" --dry-run
[ -z "${KILN_INPUT_PUSH:-}" ] || set -- "$@" --push="$KILN_INPUT_PUSH"
[ "${KILN_INPUT_FORCE:-}" != true ] || set -- "$@" --force
[ "${KILN_INPUT_REQUIRE_ISOLATION:-}" != true ] || set -- "$@" --require-isolation
[ "${KILN_INPUT_NO_PUBLISH:-}" != true ] || set -- "$@" --no-publish
[ "${KILN_INPUT_NO_POST:-}" != true ] || set -- "$@" --no-post
[ -z "${KILN_INPUT_KEY:-}" ] || set -- "$@" --key="$KILN_INPUT_KEY"
[ "${KILN_INPUT_KEYLESS:-}" != true ] || set -- "$@" --keyless
[ "${KILN_INPUT_NO_KEYLESS:-}" != true ] || set -- "$@" --no-keyless
[ -z "${KILN_INPUT_FULCIO_URL:-}" ] || set -- "$@" --fulcio-url="$KILN_INPUT_FULCIO_URL"
[ -z "${KILN_INPUT_REKOR_URL:-}" ] || set -- "$@" --rekor-url="$KILN_INPUT_REKOR_URL"
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
# END GENERATED args

exec kiln "$@"
