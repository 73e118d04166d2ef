//! Rust → `wasm32-wasip1` core module.
//!
//! 1. [`resolve_toolchain`] lists the toolchains that can build for the target, in
//!    order: a rustc whose sysroot has the target; rustup, which can add it; a rustc
//!    with std's source plus a wasi-libc sysroot (std built from source); else an error
//!    naming everything that was tried.
//! 2. [`build`] tries them in that order (rustup's `target add` is bounded in time and
//!    falls through on failure) and builds only the chosen binary target, so a
//!    package's `cdylib`/`staticlib` library is not linked as a program.
//! 3. A failed build is classified: a build script compiling C (`-sys` crates), libc
//!    symbols the local wasi-libc lacks, or the compiler's own errors, each with the
//!    cause and the fix rather than a raw linker dump.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{Built, Context, SbomInputs, WasmKind};
use crate::diagnose::{Blame, Diagnose};
use crate::process::{Cmd, ProcessError};
use crate::project::RustProject;
use crate::reporter::Reporter;

pub use crate::toolchain::RUST_TARGET as TARGET;

/// How long `rustup target add` may take before kiln moves on to the next toolchain.
const RUSTUP_TIMEOUT: Duration = Duration::from_secs(180);

pub mod cache;
mod toolchain;

pub use toolchain::{Probe, RustToolchain, resolve_toolchain};

/// Builds the project's binary with the first toolchain that works.
pub async fn build(
    project: &RustProject,
    toolchains: &[RustToolchain],
    ctx: &Context<'_>,
    reporter: &dyn Reporter,
) -> Result<Built, RustBuildError> {
    let mut skipped = Vec::new();
    for toolchain in toolchains {
        if let RustToolchain::Rustup { rustup, .. } = toolchain {
            reporter.step(&format!("Adding the {TARGET} target with rustup"));
            if let Err(why) =
                rustup_target_add(rustup, &project.workspace_root, ctx, reporter).await
            {
                reporter.warn(&format!("{why}; trying the next toolchain"));
                skipped.push(why);
                continue;
            }
        }
        return build_with(project, toolchain, ctx, reporter).await;
    }
    Err(RustBuildError::NoToolchain { tried: skipped })
}

async fn rustup_target_add(
    rustup: &Path,
    cwd: &Path,
    ctx: &Context<'_>,
    reporter: &dyn Reporter,
) -> Result<(), String> {
    let added = Cmd::new(rustup, ctx.env)
        .args(["target", "add", TARGET])
        .current_dir(cwd)
        .timeout(RUSTUP_TIMEOUT)
        .run(reporter)
        .await;
    match added {
        Ok(_) => Ok(()),
        Err(ProcessError::TimedOut { .. }) => Err(format!(
            "`rustup target add {TARGET}` did not finish in {} s",
            RUSTUP_TIMEOUT.as_secs()
        )),
        Err(err) => Err(format!("`rustup target add {TARGET}` failed: {err}")),
    }
}

async fn build_with(
    project: &RustProject,
    toolchain: &RustToolchain,
    ctx: &Context<'_>,
    reporter: &dyn Reporter,
) -> Result<Built, RustBuildError> {
    let cmd = cargo_command(project, toolchain, ctx);
    reporter.step(&format!("Compiling `{}` for {TARGET}", project.bin));
    let captured = cmd
        .run_unchecked(reporter)
        .await
        .map_err(RustBuildError::Cargo)?;
    if !captured.status.success() {
        return Err(classify_failure(
            project,
            toolchain,
            ProcessError::Failed {
                command: cmd.to_string(),
                status: captured.status,
                stdout: String::new(),
                stderr: captured.stderr,
            },
        ));
    }
    let wasm = find_executable(&captured.stdout, &project.bin).ok_or_else(|| {
        RustBuildError::NoArtifact {
            bin: project.bin.clone(),
        }
    })?;
    Ok(Built {
        wasm,
        kind: WasmKind::Module,
        toolchain: toolchain.to_string(),
        facts: vec![("target".into(), TARGET.into())],
        version: None,
        sbom: SbomInputs::Rust(project.clone()),
    })
}

/// The `cargo rustc` invocation for `toolchain`.
fn cargo_command(project: &RustProject, toolchain: &RustToolchain, ctx: &Context<'_>) -> Cmd {
    let cargo = match toolchain {
        RustToolchain::Installed { cargo, .. }
        | RustToolchain::Rustup { cargo, .. }
        | RustToolchain::BuildStd { cargo, .. } => cargo,
    };
    // Build scripts and proc macros are the project's (and its dependencies') code.
    let mut cmd = Cmd::new(cargo, ctx.env)
        .isolated(ctx.sandbox)
        .current_dir(&project.workspace_root)
        .args(["rustc", "--release"]);
    if let RustToolchain::BuildStd { .. } = toolchain {
        cmd = cmd.arg("-Zbuild-std=std,panic_abort");
    }
    cmd = cmd
        .args(["--target", TARGET])
        .arg("--manifest-path")
        .arg(&project.manifest_path)
        .args(["--package", &project.package, "--bin", &project.bin]);
    if project.no_default_features {
        cmd = cmd.arg("--no-default-features");
    }
    if !project.features.is_empty() {
        cmd = cmd.arg("--features").arg(project.features.join(","));
    }
    cmd = cmd
        .arg("--message-format=json-render-diagnostics")
        .env("CARGO_TARGET_DIR", &project.target_dir);
    if let RustToolchain::BuildStd {
        rustc,
        wasi_libc,
        linker,
        ..
    } = toolchain
    {
        let mut rustflags = OsString::from("-C link-self-contained=no -L ");
        rustflags.push(wasi_libc);
        if let Some(user) = ctx.env.get("RUSTFLAGS") {
            rustflags.push(" ");
            rustflags.push(user);
        }
        cmd = cmd
            .env("RUSTC", rustc)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_WASM32_WASIP1_LINKER", linker)
            .env("RUSTFLAGS", rustflags);
        // The C runtime's `_start` goes to the binary only: given to every target, it
        // would also be linked into a `cdylib` library and fail with `undefined symbol: main`.
        let mut crt = OsString::from("link-arg=");
        crt.push(wasi_libc.join("crt1-command.o"));
        cmd = cmd.arg("--").arg("-C").arg(crt);
    }
    cmd
}

#[derive(Deserialize)]
struct ArtifactMessage {
    reason: String,
    #[serde(default)]
    target: Option<ArtifactTarget>,
    #[serde(default)]
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct ArtifactTarget {
    name: String,
    kind: Vec<String>,
}

/// The path of binary `bin` in cargo's JSON messages.
fn find_executable(stdout: &str, bin: &str) -> Option<PathBuf> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<ArtifactMessage>(line).ok())
        .filter(|m| m.reason == "compiler-artifact")
        .filter(|m| {
            m.target
                .as_ref()
                .is_some_and(|t| t.name == bin && t.kind.iter().any(|k| k == "bin"))
        })
        .find_map(|m| m.executable)
}

/// Turns cargo's failure output into the most specific error kiln can explain.
fn classify_failure(
    project: &RustProject,
    toolchain: &RustToolchain,
    source: ProcessError,
) -> RustBuildError {
    let ProcessError::Failed { stderr, .. } = &source else {
        return RustBuildError::Cargo(source);
    };
    if let Some((krate, version)) = failed_build_script(stderr) {
        return RustBuildError::BuildScript {
            krate,
            version,
            package: project.package.clone(),
            source,
        };
    }
    let symbols = undefined_symbols(stderr);
    if !symbols.is_empty() {
        return RustBuildError::MissingSymbols {
            symbols,
            build_std: matches!(toolchain, RustToolchain::BuildStd { .. }),
            source,
        };
    }
    let diagnostics = compiler_errors(stderr);
    if !diagnostics.is_empty() {
        return RustBuildError::Compile {
            package: project.package.clone(),
            source: CompilerErrors(diagnostics),
        };
    }
    RustBuildError::Cargo(source)
}

/// `error: failed to run custom build command for `mimalloc-sys v0.1.4`` → (name, version).
fn failed_build_script(stderr: &str) -> Option<(String, String)> {
    stderr.lines().find_map(|line| {
        let rest = line
            .trim()
            .strip_prefix("error: failed to run custom build command for `")?;
        let spec = rest.split('`').next()?;
        let (name, version) = spec.split_once(' ')?;
        let version = version.split_whitespace().next()?.trim_start_matches('v');
        Some((name.to_string(), version.to_string()))
    })
}

/// Every distinct `undefined symbol: NAME` the linker reported, in order.
fn undefined_symbols(stderr: &str) -> Vec<String> {
    let mut symbols: Vec<String> = Vec::new();
    for line in stderr.lines() {
        if let Some((_, rest)) = line.split_once("undefined symbol: ") {
            let symbol = rest.trim().trim_matches('`').to_string();
            if !symbol.is_empty() && !symbols.contains(&symbol) {
                symbols.push(symbol);
            }
        }
    }
    symbols
}

/// The compiler's rendered `error` diagnostics, without warnings and cargo's own noise.
fn compiler_errors(stderr: &str) -> String {
    let mut out = String::new();
    let mut in_error = false;
    for line in stderr.lines() {
        let starts_diagnostic =
            !line.starts_with(' ') && (line.starts_with("error") || line.starts_with("warning"));
        if starts_diagnostic {
            in_error = (line.starts_with("error[") || line.starts_with("error:"))
                && !line.starts_with("error: could not compile")
                && !line.starts_with("error: aborting due to");
        }
        if in_error {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.trim_end().to_string()
}

/// The compiler's error messages, shown as the cause of [`RustBuildError::Compile`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CompilerErrors(pub String);

#[derive(Debug, thiserror::Error)]
pub enum RustBuildError {
    #[error("No Rust toolchain that can build for {TARGET} was found")]
    NoToolchain { tried: Vec<String> },
    #[error("Failed to compile `{package}` for {TARGET}")]
    Compile {
        package: String,
        #[source]
        source: CompilerErrors,
    },
    #[error(
        "Dependency `{krate}` v{version} of `{package}` runs a build script that cannot build for {TARGET} (it compiles C code or needs a native library)"
    )]
    BuildScript {
        krate: String,
        version: String,
        package: String,
        #[source]
        source: ProcessError,
    },
    #[error("The program links against C library functions the {TARGET} libc lacks: {}", symbols.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "))]
    MissingSymbols {
        symbols: Vec<String>,
        build_std: bool,
        #[source]
        source: ProcessError,
    },
    #[error("cargo finished without producing the binary `{bin}`")]
    NoArtifact { bin: String },
    #[error("cargo failed")]
    Cargo(#[source] ProcessError),
}

impl Diagnose for RustBuildError {
    fn hint(&self) -> Option<String> {
        match self {
            RustBuildError::NoToolchain { tried } => Some(format!(
                "run `rustup target add {TARGET}` (with rustup from https://rustup.rs), or install \
                 rustc with std's source, wasi-libc and wasm-ld (Debian: `apt-get install rustc-web \
                 cargo-web rust-web-src lld wasi-libc`)\n\ntried:\n{}",
                tried
                    .iter()
                    .map(|t| format!("  - {t}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )),
            RustBuildError::Compile { .. } => {
                Some("fix the errors above; run with `-v` to see cargo's full output".into())
            }
            RustBuildError::BuildScript { krate, .. } => Some(format!(
                "find which feature pulls it in with `cargo tree -i {krate} --target {TARGET} -e features`, \
                 then turn that feature off in kiln.toml:\n\n  [rust]\n  no-default-features = true\n  \
                 features = [\"...\"]  # the default features you still want"
            )),
            RustBuildError::MissingSymbols {
                build_std: true, ..
            } => Some(format!(
                "the local wasi-libc is older than this standard library (threads, `realpath`); \
                 use rustup's target, which bundles a current wasi-libc: `rustup target add {TARGET}`, \
                 or point KILN_WASI_SYSROOT at a newer wasi-libc sysroot"
            )),
            RustBuildError::MissingSymbols { .. } => Some(format!(
                "WASI has no such functions ({TARGET} has no threads or processes): disable the \
                 feature or dependency that uses them"
            )),
            RustBuildError::NoArtifact { .. } | RustBuildError::Cargo(_) => {
                Some("run with `-v` to see cargo's full output".into())
            }
        }
    }

    fn blame(&self) -> Blame {
        match self {
            RustBuildError::NoArtifact { .. } => Blame::Internal,
            _ => Blame::User,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_failed_build_script() {
        let stderr = "   Compiling foo v0.1.0\nerror: failed to run custom build command for `libmimalloc-sys v0.1.44`\n\nCaused by:\n";
        assert_eq!(
            failed_build_script(stderr),
            Some(("libmimalloc-sys".into(), "0.1.44".into()))
        );
        assert_eq!(failed_build_script("error: something else"), None);
    }

    #[test]
    fn collects_distinct_undefined_symbols() {
        let stderr = "  = note: wasm-ld: error: /tmp/x.o: undefined symbol: pthread_create\n          wasm-ld: error: undefined symbol: pthread_attr_init\n          wasm-ld: error: undefined symbol: pthread_create\n";
        assert_eq!(
            undefined_symbols(stderr),
            vec![
                "pthread_create".to_string(),
                "pthread_attr_init".to_string()
            ]
        );
    }

    #[test]
    fn keeps_only_error_diagnostics() {
        let stderr = "\
warning: unused variable: `x`
 --> src/main.rs:2:9
  |
error[E0308]: mismatched types
 --> src/main.rs:3:18
  |
3 |     let n: u32 = \"one\";
  |            ---   ^^^^^ expected `u32`, found `&str`

error: aborting due to 1 previous error; 1 warning emitted

error: could not compile `broken` (bin \"broken\") due to 1 previous error";
        let errors = compiler_errors(stderr);
        assert!(
            errors.starts_with("error[E0308]: mismatched types"),
            "{errors}"
        );
        assert!(errors.contains("expected `u32`, found `&str`"), "{errors}");
        assert!(!errors.contains("unused variable"), "{errors}");
        assert!(!errors.contains("could not compile"), "{errors}");
    }

    #[test]
    fn finds_the_bin_artifact() {
        let stdout = r#"{"reason":"compiler-artifact","target":{"name":"app","kind":["cdylib","rlib"]},"executable":null}
{"reason":"compiler-artifact","target":{"name":"app","kind":["bin"]},"executable":"/t/wasm32-wasip1/release/app.wasm"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            find_executable(stdout, "app"),
            Some(PathBuf::from("/t/wasm32-wasip1/release/app.wasm"))
        );
        assert_eq!(find_executable(stdout, "other"), None);
    }
}
