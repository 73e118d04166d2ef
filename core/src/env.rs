//! Every environment variable kiln reads, in one place.
//!
//! CLI flags win over these; these win over `kiln.toml`.

/// kiln's own data directory: provisioned tools and compiled-code cache.
/// Default: `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
pub const KILN_HOME: &str = "KILN_HOME";
/// Log filter for kiln's tracing output (`debug`, `kiln=trace`); falls back to `RUST_LOG`.
pub const KILN_LOG: &str = "KILN_LOG";
/// Any non-empty value hides progress spinners, as in CI.
pub const KILN_NO_PROGRESS: &str = "KILN_NO_PROGRESS";
/// The OCI image layout directory artifacts are stored in (default `<project>/.kiln/oci`).
pub const KILN_LAYOUT: &str = "KILN_LAYOUT";
/// `kiln build --push`: the registry reference to push to.
pub const KILN_PUSH: &str = "KILN_PUSH";
/// Registry hosts spoken to over plain HTTP, comma-separated (`--insecure-registry`).
pub const KILN_INSECURE_REGISTRY: &str = "KILN_INSECURE_REGISTRY";
/// The username for every registry, used before any other credential source; paired
/// with [`KILN_REGISTRY_PASSWORD`].
pub const KILN_REGISTRY_USERNAME: &str = "KILN_REGISTRY_USERNAME";
/// The password or token for every registry, paired with [`KILN_REGISTRY_USERNAME`].
pub const KILN_REGISTRY_PASSWORD: &str = "KILN_REGISTRY_PASSWORD";
/// Which Rust toolchain to build with: `auto` (default), `rustup` or `build-std`.
pub const KILN_RUST_TOOLCHAIN: &str = "KILN_RUST_TOOLCHAIN";
/// A wasi-libc sysroot (with `libc.a` and `crt1-command.o`) for std built from source.
pub const KILN_WASI_SYSROOT: &str = "KILN_WASI_SYSROOT";
/// The host Python that drives pip and componentize-py (default `python3` on `PATH`).
pub const KILN_PYTHON: &str = "KILN_PYTHON";
/// Reproducible builds: the artifact's creation time, in seconds since the epoch.
/// When unset, kiln uses the time of the project's last git commit.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// Set by every CI system kiln knows: turns progress spinners into plain lines.
pub const CI: &str = "CI";
/// Any non-empty value turns colour off (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";

/// A variable's value, treating empty as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
