//! What a Rust build caches: cargo's registry index, `.crate` archives and git databases
//! of the packages `Cargo.lock` names, plus the target directory's `release/` and
//! `wasm32-wasip1/`, pruned of the workspace's own crates (as rust-cache does).

use std::path::PathBuf;

use kiln_cache::{CacheKey, CacheKind, Root, Selection, prune};

use super::{RustToolchain, TARGET};
use crate::cache::{CacheOptions, KindPlan};
use crate::project::RustProject;
use crate::settings::KilnHome;

/// The cargo cache of `project`: its key hashes the target, the project's name, the
/// first toolchain's version, OS and architecture, then the lockfiles.
pub fn kinds(
    project: &RustProject,
    toolchains: &[RustToolchain],
    name: &str,
    options: &CacheOptions,
    home: &KilnHome,
) -> std::io::Result<Vec<KindPlan>> {
    let mut identity = vec![format!("target {TARGET}"), format!("project {name}")];
    if let Some(first) = toolchains.first() {
        identity.push(match first {
            RustToolchain::Installed { version, .. } | RustToolchain::Rustup { version, .. } => {
                version.clone()
            }
            RustToolchain::BuildStd { version, .. } => format!("{version} build-std"),
        });
    }
    let key = CacheKey::compute(&options.key_inputs(
        CacheKind::Cargo,
        identity,
        &project.workspace_root,
    ))?;
    let lock = prune::CargoLock::read(&project.workspace_root.join("Cargo.lock"))?;
    let cargo_home = home.cargo_home();
    let local: Vec<&str> = lock.local.iter().map(String::as_str).collect();
    let mut target =
        prune::cargo_target_with(&project.target_dir, &local, Some(&lock.dependencies()))?;
    let target_dirs = Selection {
        include: Some(
            ["release", TARGET, "CACHEDIR.TAG", ".rustc_info.json"]
                .iter()
                .map(PathBuf::from)
                .collect(),
        ),
        exclude: Vec::new(),
    };
    target.include = target_dirs.include.clone();
    Ok(vec![KindPlan {
        kind: CacheKind::Cargo,
        key,
        roots: vec![
            Root::new(
                "cargo-home",
                cargo_home,
                prune::cargo_home_for(cargo_home, &lock)?,
            )
            .admitting(prune::cargo_home()),
            Root::new("target", &project.target_dir, target).admitting(target_dirs),
        ],
        // cargo's package cache locks (`cache_lock.rs`): exclusive on both is cargo's
        // own `MutateExclusive`; older cargos know only the first.
        locks: vec![
            cargo_home.join(".package-cache"),
            cargo_home.join(".package-cache-mutate"),
        ],
    }])
}

/// After a failed build, whether the cargo cache still saves the next build its
/// downloads: every package `Cargo.lock` names was fetched.
pub fn downloads_complete(project: &RustProject, home: &KilnHome) -> bool {
    prune::CargoLock::read(&project.workspace_root.join("Cargo.lock"))
        .is_ok_and(|lock| prune::downloads_complete(home.cargo_home(), &lock))
}
