#!/usr/bin/env bash
# Installs kiln for the runner's OS and architecture, then puts it on the job's PATH.
#
# Downloads BASE/vVERSION/kiln-TARGET.tar.xz (BASE: the `download-url` input; the
# archives `dist` builds for each release) and checks it against the sha256 committed in
# the action's checksums.txt before unpacking it. With `install-from-source: true`, it
# builds kiln with `cargo install --git` instead: outside the workspace, so the
# project's rust-toolchain.toml cannot choose the Rust that builds kiln, with kiln's own
# Rust (installed by rustup when missing), into the runner's tool cache, which the
# action keeps between jobs with actions/cache for release versions.
#
# Environment: KILN_INPUT_VERSION, KILN_INPUT_DOWNLOAD_URL, KILN_INPUT_INSTALL_FROM_SOURCE
# (the action's inputs); RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP, RUNNER_TOOL_CACHE,
# GITHUB_PATH (the runner's); KILN_CHECKSUMS_FILE overrides the checksums file (tests use
# it).
set -euo pipefail

# The Rust kiln builds with (its rust-toolchain.toml).
KILN_RUST=1.95.0

fail() {
  echo "::error title=kiln install::$*" >&2
  exit 1
}

version="${KILN_INPUT_VERSION:?the version input is empty}"
version="${version#v}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:?}}"
exe=""
[ "${RUNNER_OS:-}" = Windows ] && exe=".exe"

if [ "${KILN_INPUT_INSTALL_FROM_SOURCE:-false}" = true ]; then
  # Where action.yml's actions/cache step restores and saves a source build.
  root="$tools/kiln/${KILN_INPUT_VERSION}-source"
  bin="$root/bin"
  repository="https://github.com/kiln-build/kiln"
  if [ -x "$bin/kiln$exe" ]; then
    echo "kiln $version: built from source by an earlier job (restored from the cache)" >&2
  else
    command -v rustup >/dev/null || fail "install-from-source needs rustup on the runner (GitHub's hosted runners have it)"
    if [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]]; then
      ref=(--tag "v$version")
    else
      ref=(--branch "$version")
    fi
    # Not in the workspace: rustup would take the project's rust-toolchain.toml.
    cd "${RUNNER_TEMP:?}"
    rustup toolchain install "$KILN_RUST" --profile minimal --no-self-update >&2
    echo "Building kiln ${ref[*]} from $repository with Rust $KILN_RUST" >&2
    cargo "+$KILN_RUST" install --locked --git "$repository" "${ref[@]}" --root "$root" kiln
  fi
else
  root="${RUNNER_TEMP:?}/kiln-$version"
  bin="$root/bin"
  mkdir -p "$bin"
  case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
    Linux/X64) target=x86_64-unknown-linux-gnu ;;
    Linux/ARM64) target=aarch64-unknown-linux-gnu ;;
    macOS/X64) target=x86_64-apple-darwin ;;
    macOS/ARM64) target=aarch64-apple-darwin ;;
    *) fail "no kiln release for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}: set install-from-source: true" ;;
  esac
  asset="v$version/kiln-$target.tar.xz"
  checksums="${KILN_CHECKSUMS_FILE:-$here/checksums.txt}"
  expected="$(awk -v asset="$asset" '$1 !~ /^#/ && $2 == asset { print $1 }' "$checksums")"
  [ -n "$expected" ] || fail "no sha256 for $asset in $checksums: this action cannot check that download (set install-from-source: true, or use a version it lists)"
  base="${KILN_INPUT_DOWNLOAD_URL:?the download-url input is empty}"
  archive="$root/kiln-$target.tar.xz"
  echo "Downloading ${base%/}/$asset" >&2
  curl --fail --silent --show-error --location --retry 3 --proto '=https,file' \
    --output "$archive" "${base%/}/$asset"
  if command -v sha256sum >/dev/null; then
    actual="$(sha256sum "$archive" | cut -d' ' -f1)"
  else
    actual="$(shasum -a 256 "$archive" | cut -d' ' -f1)"
  fi
  if [ "$actual" != "$expected" ]; then
    rm -f "$archive"
    fail "sha256 mismatch for $asset: expected $expected, got $actual"
  fi
  # dist's archives hold kiln-TARGET/kiln (with the README and licences).
  tar -xJf "$archive" -C "$root"
  rm -f "$archive"
  mv "$root/kiln-$target/kiln$exe" "$bin/kiln$exe"
  rm -rf "${root:?}/kiln-$target"
fi

"$bin/kiln$exe" --version >&2
echo "$bin" >>"${GITHUB_PATH:?}"
