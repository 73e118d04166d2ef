//! Which Rust toolchains can build for `wasm32-wasip1`, found without installing
//! anything, in the order [`super::build`] tries them: a rustc whose sysroot has the
//! target; rustup, which can add it; a rustc with std's source plus a wasi-libc sysroot
//! (std built from source); else an error naming everything that was tried.
//!
//! rustc's version and sysroot are probed once per toolchain and remembered in
//! `$KILN_HOME/toolchains.json`, keyed on what decides which rustc answers (the program's
//! path and mtime, `RUSTUP_TOOLCHAIN`, the project's `rust-toolchain` file, rustup's
//! settings and installed toolchains): through rustup's proxy each probe costs ~20 ms,
//! and detection is on every build's path.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{RustBuildError, TARGET};
use crate::env::Env;
use crate::process::{self, Cmd};
use crate::project::RustProject;
use kiln_cli::ToolchainChoice;

/// A way to build for [`TARGET`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RustToolchain {
    /// rustc's sysroot already has the target's standard library.
    Installed {
        cargo: PathBuf,
        rustc: PathBuf,
        version: String,
    },
    /// rustup is present and will be asked to add the target.
    Rustup {
        rustup: PathBuf,
        cargo: PathBuf,
        rustc: PathBuf,
        version: String,
    },
    /// std is compiled from source (`-Zbuild-std`) and linked against a wasi-libc
    /// sysroot with `wasm-ld`.
    BuildStd {
        cargo: PathBuf,
        rustc: PathBuf,
        version: String,
        wasi_libc: PathBuf,
        linker: PathBuf,
    },
}

impl std::fmt::Display for RustToolchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RustToolchain::Installed { version, .. } => {
                write!(f, "{version} with its installed {TARGET} target")
            }
            RustToolchain::Rustup { version, .. } => {
                write!(f, "{version} with {TARGET} added by rustup")
            }
            RustToolchain::BuildStd {
                version, wasi_libc, ..
            } => write!(
                f,
                "{version} building std from source, wasi-libc from {}",
                wasi_libc.display()
            ),
        }
    }
}

/// Where wasi-libc sysroots are commonly installed (Debian's `wasi-libc`, wasi-sdk).
const WASI_LIBC_DIRS: &[&str] = &[
    "/usr/lib/wasm32-wasi",
    "/usr/lib/wasm32-wasip1",
    "/usr/share/wasi-sysroot/lib/wasm32-wasi",
    "/opt/wasi-sdk/share/wasi-sysroot/lib/wasm32-wasi",
];

/// What [`resolve_toolchain`] reads from kiln: its environment, and where it remembers
/// probes.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    pub env: &'a Env,
    /// `$KILN_HOME/toolchains.json`; `None` probes every time.
    pub facts: Option<&'a Path>,
}

/// Lists the toolchains that can build `project`, in the order [`super::build`] tries
/// them.
///
/// Cheap: it only asks rustc for its version and sysroot (once per toolchain, see the
/// module doc). Runs in the workspace root so that a project's own `rust-toolchain.toml`
/// is honoured by rustup.
pub async fn resolve_toolchain(
    project: &RustProject,
    choice: ToolchainChoice,
    probe: Probe<'_>,
) -> Result<Vec<RustToolchain>, RustBuildError> {
    let cwd = &project.workspace_root;
    let env = probe.env;
    let mut tried = Vec::new();
    let mut found = Vec::new();

    let path_rustc = process::find_program("rustc", env);
    let path_cargo = process::find_program("cargo", env);
    // Both probes the build may need run at once: the PATH rustc and Debian's.
    let (path_probe, system_probe) = tokio::join!(
        async {
            match &path_rustc {
                Some(rustc) => probe_rustc(rustc, cwd, probe).await,
                None => None,
            }
        },
        async {
            let system = Path::new(SYSTEM_RUSTC);
            let needed = choice != ToolchainChoice::Rustup
                && path_rustc.as_deref() != Some(system)
                && system.is_file();
            if needed {
                probe_rustc(system, cwd, probe).await
            } else {
                None
            }
        }
    );
    if choice != ToolchainChoice::BuildStd {
        match (&path_rustc, &path_cargo) {
            (Some(rustc), Some(cargo)) => match &path_probe {
                Some(probed) if probed.sysroot.join("lib/rustlib").join(TARGET).is_dir() => {
                    found.push(RustToolchain::Installed {
                        cargo: cargo.clone(),
                        rustc: rustc.clone(),
                        version: probed.version.clone(),
                    });
                }
                Some(probed) => {
                    tried.push(format!(
                        "{} ({}): no {TARGET} standard library in {}",
                        rustc.display(),
                        probed.version,
                        probed.sysroot.display()
                    ));
                    match process::find_program("rustup", env) {
                        Some(rustup) => found.push(RustToolchain::Rustup {
                            rustup,
                            cargo: cargo.clone(),
                            rustc: rustc.clone(),
                            version: probed.version.clone(),
                        }),
                        None => tried.push("rustup: not found on PATH".into()),
                    }
                }
                None => tried.push(format!("{}: `rustc -vV` failed", rustc.display())),
            },
            _ => tried.push("rustc and cargo: not found on PATH".into()),
        }
    }

    // An installed target needs no fallback; rustup's download may fail, so it gets one.
    let installed = matches!(found.first(), Some(RustToolchain::Installed { .. }));
    if choice != ToolchainChoice::Rustup && !installed {
        let mut probes = Vec::new();
        if let (Some(rustc), Some(probed)) = (&path_rustc, path_probe) {
            probes.push((rustc.clone(), probed));
        }
        if let Some(probed) = system_probe {
            probes.push((PathBuf::from(SYSTEM_RUSTC), probed));
        }
        match build_std_toolchain(&probes, env) {
            Ok(toolchain) => found.push(toolchain),
            Err(why) => tried.push(why),
        }
    }

    if found.is_empty() {
        Err(RustBuildError::NoToolchain { tried })
    } else {
        Ok(found)
    }
}

/// Debian's rustc, which ships std's source (`rust-web-src`): the build-std fallback.
const SYSTEM_RUSTC: &str = "/usr/bin/rustc";

/// What kiln needs to know of a rustc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RustcProbe {
    version: String,
    sysroot: PathBuf,
}

/// rustc's version and sysroot: remembered, or asked for (both at once).
async fn probe_rustc(rustc: &Path, cwd: &Path, probe: Probe<'_>) -> Option<RustcProbe> {
    let key = facts_key(rustc, cwd, probe.env);
    if let (Some(file), Some(key)) = (probe.facts, &key)
        && let Some(known) = remembered(file, key)
    {
        return Some(known);
    }
    let ask = |args: &'static [&'static str]| async move {
        Cmd::new(rustc, probe.env)
            .args(args)
            .current_dir(cwd)
            .output()
            .await
            .ok()
            .map(|out| out.stdout.trim().to_string())
    };
    let (version, sysroot) = tokio::join!(ask(&["--version"]), ask(&["--print", "sysroot"]));
    let probed = RustcProbe {
        version: version?,
        sysroot: PathBuf::from(sysroot?),
    };
    if let (Some(file), Some(key)) = (probe.facts, key) {
        remember(file, key, &probed);
    }
    Some(probed)
}

/// Everything that decides which rustc answers when `rustc` is run in `cwd`, hashed.
/// `None` when it cannot be told (then the probe runs).
fn facts_key(rustc: &Path, cwd: &Path, env: &Env) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mtime = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
    };
    let mut hash = Sha256::new();
    hash.update(rustc.as_os_str().as_encoded_bytes());
    hash.update(format!("{:?}", mtime(rustc)?));
    hash.update(env.get("RUSTUP_TOOLCHAIN").unwrap_or_default());
    // rustup's own rule: the nearest `rust-toolchain(.toml)` up from the directory.
    for dir in cwd.ancestors() {
        let files = ["rust-toolchain", "rust-toolchain.toml"].map(|f| dir.join(f));
        if let Some(file) = files.iter().find(|f| f.is_file()) {
            hash.update(file.as_os_str().as_encoded_bytes());
            hash.update(std::fs::read(file).ok()?);
            break;
        }
    }
    let rustup_home = env
        .path("RUSTUP_HOME")
        .or_else(|| env.path("HOME").map(|h| h.join(".rustup")));
    if let Some(rustup_home) = rustup_home {
        hash.update(format!(
            "{:?} {:?}",
            mtime(&rustup_home.join("settings.toml")),
            mtime(&rustup_home.join("toolchains"))
        ));
    }
    Some(hex::encode(hash.finalize()))
}

/// The remembered probe for `key`, if its sysroot is still there.
fn remembered(file: &Path, key: &str) -> Option<RustcProbe> {
    let facts: std::collections::BTreeMap<String, RustcProbe> =
        serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    facts.get(key).filter(|p| p.sysroot.is_dir()).cloned()
}

/// Adds a probe to the remembered ones (best effort: a failure only costs a probe).
fn remember(file: &Path, key: String, probed: &RustcProbe) {
    let mut facts: std::collections::BTreeMap<String, RustcProbe> = std::fs::read(file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    // Old toolchains come and go: keep the file small.
    if facts.len() > 64 {
        facts.clear();
    }
    facts.insert(key, probed.clone());
    let bytes = serde_json::to_vec_pretty(&facts).expect("probes serialise");
    if let Err(err) = kiln_cache::fsutil::write_atomic(file, &bytes) {
        tracing::debug!(file = %file.display(), %err, "could not remember the rustc probe");
    }
}

/// Finds, among the probed rustcs, one with std's source and cargo beside it, then a
/// wasi-libc sysroot and wasm-ld.
fn build_std_toolchain(
    probes: &[(PathBuf, RustcProbe)],
    env: &Env,
) -> Result<RustToolchain, String> {
    let mut reasons = Vec::new();
    let with_source = probes.iter().find_map(|(rustc, probe)| {
        let library = probe.sysroot.join("lib/rustlib/src/rust/library");
        let cargo = rustc.with_file_name("cargo");
        if !library.join("std").is_dir() {
            reasons.push(format!(
                "{} ({}): no std source in {}",
                rustc.display(),
                probe.version,
                library.display()
            ));
            None
        } else if !cargo.is_file() {
            reasons.push(format!("{}: no cargo beside it", rustc.display()));
            None
        } else {
            Some((rustc.clone(), cargo, probe.version.clone()))
        }
    });
    let Some((rustc, cargo, version)) = with_source else {
        if probes.is_empty() {
            reasons.push(format!("no rustc on PATH or at {SYSTEM_RUSTC}"));
        }
        reasons.dedup();
        return Err(format!("std built from source: {}", reasons.join("; ")));
    };
    let wasi_libc = env
        .path(crate::env::KILN_WASI_SYSROOT)
        .into_iter()
        .chain(WASI_LIBC_DIRS.iter().map(PathBuf::from))
        .find(|dir| dir.join("libc.a").is_file() && dir.join("crt1-command.o").is_file());
    let Some(wasi_libc) = wasi_libc else {
        return Err(format!(
            "std built from source with {}: no wasi-libc sysroot (libc.a, crt1-command.o) in {}",
            rustc.display(),
            WASI_LIBC_DIRS.join(", ")
        ));
    };
    let Some(linker) = process::find_program("wasm-ld", env) else {
        return Err(format!(
            "std built from source with {}: `wasm-ld` not found on PATH",
            rustc.display()
        ));
    };
    Ok(RustToolchain::BuildStd {
        cargo,
        rustc,
        version,
        wasi_libc,
        linker,
    })
}
