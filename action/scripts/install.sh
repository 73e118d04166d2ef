#!/usr/bin/env bash
# Installs kiln for the runner's OS and architecture, then puts it on the job's PATH.
#
# Downloads BASE/vVERSION/kiln-TARGET (BASE: the `download-url` input) and checks it
# against the sha256 committed in the action's checksums.txt before running it; with
# `install-from-source: true`, builds it with `cargo install --git` instead.
#
# Environment: KILN_INPUT_VERSION, KILN_INPUT_DOWNLOAD_URL, KILN_INPUT_INSTALL_FROM_SOURCE
# (the action's inputs); RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP, GITHUB_PATH (the runner's);
# KILN_CHECKSUMS_FILE overrides the checksums file (tests use it).
set -euo pipefail

fail() {
  echo "::error title=kiln install::$*" >&2
  exit 1
}

version="${KILN_INPUT_VERSION:?the version input is empty}"
version="${version#v}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="${RUNNER_TEMP:?}/kiln-$version"
bin="$root/bin"
exe=""
[ "${RUNNER_OS:-}" = Windows ] && exe=".exe"
mkdir -p "$bin"

if [ "${KILN_INPUT_INSTALL_FROM_SOURCE:-false}" = true ]; then
  repository="https://github.com/kiln-build/kiln"
  command -v cargo >/dev/null || fail "install-from-source needs cargo on the runner (e.g. dtolnay/rust-toolchain before this action)"
  if [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]]; then
    ref=(--tag "v$version")
  else
    ref=(--branch "$version")
  fi
  echo "Building kiln ${ref[*]} from $repository" >&2
  cargo install --locked --git "$repository" "${ref[@]}" --root "$root" kiln
else
  case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
    Linux/X64) target=x86_64-unknown-linux-gnu ;;
    Linux/ARM64) target=aarch64-unknown-linux-gnu ;;
    macOS/X64) target=x86_64-apple-darwin ;;
    macOS/ARM64) target=aarch64-apple-darwin ;;
    Windows/X64) target=x86_64-pc-windows-msvc ;;
    *) fail "no kiln release for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}: set install-from-source: true" ;;
  esac
  asset="v$version/kiln-$target$exe"
  checksums="${KILN_CHECKSUMS_FILE:-$here/checksums.txt}"
  expected="$(awk -v asset="$asset" '$1 !~ /^#/ && $2 == asset { print $1 }' "$checksums")"
  [ -n "$expected" ] || fail "no sha256 for $asset in $checksums: this action cannot check that download (set install-from-source: true, or use a version it lists)"
  base="${KILN_INPUT_DOWNLOAD_URL:?the download-url input is empty}"
  echo "Downloading ${base%/}/$asset" >&2
  curl --fail --silent --show-error --location --retry 3 --proto '=https,file' \
    --output "$bin/kiln$exe.part" "${base%/}/$asset"
  if command -v sha256sum >/dev/null; then
    actual="$(sha256sum "$bin/kiln$exe.part" | cut -d' ' -f1)"
  else
    actual="$(shasum -a 256 "$bin/kiln$exe.part" | cut -d' ' -f1)"
  fi
  if [ "$actual" != "$expected" ]; then
    rm -f "$bin/kiln$exe.part"
    fail "sha256 mismatch for $asset: expected $expected, got $actual"
  fi
  chmod +x "$bin/kiln$exe.part"
  mv "$bin/kiln$exe.part" "$bin/kiln$exe"
fi

"$bin/kiln$exe" --version >&2
echo "$bin" >>"${GITHUB_PATH:?}"
