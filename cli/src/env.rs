//! The name of every environment variable kiln reads, in one place.
//!
//! CLI flags win over these; these win over `kiln.toml`. Reading them is the library's
//! `env::Env`, the one environment reader.

/// kiln's own data directory: provisioned tools and compiled-code cache.
/// Default: `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
pub const KILN_HOME: &str = "KILN_HOME";
/// Log filter for kiln's tracing output (`debug`, `kiln=trace`); falls back to `RUST_LOG`.
pub const KILN_LOG: &str = "KILN_LOG";
/// Any non-empty value hides progress spinners, as in CI.
pub const KILN_NO_PROGRESS: &str = "KILN_NO_PROGRESS";
/// Any non-empty value but `0`/`false`: fail when build steps cannot be isolated in
/// their own namespaces (`--require-isolation`).
pub const KILN_REQUIRE_ISOLATION: &str = "KILN_REQUIRE_ISOLATION";
/// The one registry host `KILN_REGISTRY_USERNAME`/`PASSWORD` are for (default: the host
/// the command pushes to or pulls from).
pub const KILN_REGISTRY_HOST: &str = "KILN_REGISTRY_HOST";
/// Any value but `0`/`false`: `--allow-insecure-auth`.
pub const KILN_ALLOW_INSECURE_AUTH: &str = "KILN_ALLOW_INSECURE_AUTH";
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
/// `kiln build --cache`: where pip and cargo caches are kept, a directory or an OCI
/// repository `REGISTRY/REPOSITORY` (default `$KILN_HOME/cache`).
pub const KILN_CACHE: &str = "KILN_CACHE";
/// `kiln build --no-cache`: `true`/`1` turns caching off.
pub const KILN_NO_CACHE: &str = "KILN_NO_CACHE";
/// `kiln build --cache-prefix`: the first part of every cache key (default `kiln`).
pub const KILN_CACHE_PREFIX: &str = "KILN_CACHE_PREFIX";
/// `kiln build --cache-scope`: the trust scope caches are saved under (default: from the
/// CI, e.g. the branch or pull request).
pub const KILN_CACHE_SCOPE: &str = "KILN_CACHE_SCOPE";
/// `kiln build --cache-read-scope`, comma-separated: scopes restores may also read.
pub const KILN_CACHE_READ_SCOPES: &str = "KILN_CACHE_READ_SCOPES";
/// Which Rust toolchain to build with: `auto` (default), `rustup` or `build-std`.
pub const KILN_RUST_TOOLCHAIN: &str = "KILN_RUST_TOOLCHAIN";
/// A wasi-libc sysroot (with `libc.a` and `crt1-command.o`) for std built from source.
pub const KILN_WASI_SYSROOT: &str = "KILN_WASI_SYSROOT";
/// The host Python that drives pip and componentize-py (default `python3` on `PATH`).
pub const KILN_PYTHON: &str = "KILN_PYTHON";
/// The cosign private key to sign with: a path, or the PEM itself (as CI secrets hold
/// it). Default: kiln's local development key in `KILN_HOME/signing/`.
pub const KILN_SIGNING_KEY: &str = "KILN_SIGNING_KEY";
/// The password of [`KILN_SIGNING_KEY`]; falls back to [`COSIGN_PASSWORD`], then empty.
pub const KILN_SIGNING_PASSWORD: &str = "KILN_SIGNING_PASSWORD";
/// cosign's own variable for a private key's password, honoured as a fallback.
pub const COSIGN_PASSWORD: &str = "COSIGN_PASSWORD";
/// An OIDC identity token (a JWT with audience `sigstore`) to sign keylessly with, as
/// GitLab's `id_tokens: SIGSTORE_ID_TOKEN: aud: sigstore` provides it; any CI may set it.
/// Never printed.
pub const SIGSTORE_ID_TOKEN: &str = "SIGSTORE_ID_TOKEN";
/// GitHub Actions: the endpoint that issues OIDC tokens (set with `permissions: id-token:
/// write`); kiln then signs keylessly.
pub const ACTIONS_ID_TOKEN_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// GitHub Actions: the bearer token for [`ACTIONS_ID_TOKEN_REQUEST_URL`]. Never printed.
pub const ACTIONS_ID_TOKEN_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
/// `kiln build --fulcio-url`: the Fulcio that issues keyless signing certificates
/// (default `https://fulcio.sigstore.dev`).
pub const KILN_FULCIO_URL: &str = "KILN_FULCIO_URL";
/// `kiln build --rekor-url`: the Rekor transparency log keyless signatures are logged in
/// (default `https://rekor.sigstore.dev`).
pub const KILN_REKOR_URL: &str = "KILN_REKOR_URL";
/// The cosign public key `kiln verify` and `kiln run --verify` check with: a path or the
/// PEM. Default: kiln's local development key.
pub const KILN_VERIFY_KEY: &str = "KILN_VERIFY_KEY";
/// Which CI to post the summary to: `github`, `gitlab`, `tekton`, `jenkins` or `local`
/// (`--platform`; default: detected from the environment).
pub const KILN_PLATFORM: &str = "KILN_PLATFORM";
/// `kiln build --summary-file` / `kiln summary post --summary`: the summary JSON file.
pub const KILN_SUMMARY_FILE: &str = "KILN_SUMMARY_FILE";
/// GitHub: the token for the pull request comment, before `GITHUB_TOKEN`.
pub const KILN_GITHUB_TOKEN: &str = "KILN_GITHUB_TOKEN";
/// GitLab: a token with the `api` scope for the merge request note (`CI_JOB_TOKEN`
/// cannot write notes).
pub const KILN_GITLAB_TOKEN: &str = "KILN_GITLAB_TOKEN";
/// GitLab: the dotenv report kiln writes (default `kiln.env` in the working directory).
pub const KILN_DOTENV: &str = "KILN_DOTENV";
/// Tekton: the results directory (default `/tekton/results`, when it exists).
pub const KILN_TEKTON_RESULTS: &str = "KILN_TEKTON_RESULTS";
/// Jenkins: where `kiln-summary.md` and `kiln-summary.json` go (default `WORKSPACE`, else
/// the working directory).
pub const KILN_SUMMARY_DIR: &str = "KILN_SUMMARY_DIR";
/// Reproducible builds: the artifact's creation time, in seconds since the epoch.
/// When unset, kiln uses the time of the project's last git commit.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// Set by every CI system kiln knows: turns progress spinners into plain lines.
pub const CI: &str = "CI";
/// Any non-empty value turns colour off (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
