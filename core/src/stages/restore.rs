//! The restore stage: brings back the caches an earlier build saved.
//!
//! 1. Opens the store: a local directory, or an OCI registry repository (pull access,
//!    credentials and retries as for pushes).
//! 2. For each cache of the plan (cargo for Rust, pip for Python), reads the exact key's
//!    manifest, else the newest one sharing the key's restore prefix (a partial hit).
//! 3. Validates the manifest whole, then writes each directory's part; files already in
//!    place are left alone, missing chunks are downloaded (and kept locally).
//!
//! A cache that cannot be read (unreachable, corrupt, hostile) is reported in the
//! outcome as a warning for that cache only; the caller builds without it.

use kiln_cache::{Hit, Manifest, RestoreOptions};
use oci_client::RegistryOperation;

use crate::cache::{CacheLocation, KindPlan};
use crate::diagnose::{Blame, Diagnose, one_line};
use crate::registry::{RegistryError, RegistryOptions};
use crate::reporter::Reporter;

/// What to restore, from where.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub location: CacheLocation,
    pub kinds: Vec<KindPlan>,
    pub registry: RegistryOptions,
    /// Where a registry store keeps the chunks it downloads (`$KILN_HOME/cache`).
    pub local: std::path::PathBuf,
}

/// What the restore did, per cache.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    pub kinds: Vec<KindRestored>,
}

#[derive(Debug, Clone)]
pub struct KindRestored {
    pub kind: kiln_cache::CacheKind,
    pub key: String,
    pub hit: Hit,
    pub restored_key: Option<String>,
    pub files_restored: u64,
    pub bytes_restored: u64,
    /// The manifest restored, for the save's change detection.
    pub manifest: Option<Manifest>,
    /// Why nothing was restored when something went wrong, or what was left out of a
    /// cache that held more than kiln saves.
    pub warning: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("Failed to open the cache store `{location}`")]
    Open {
        location: String,
        #[source]
        source: RegistryError,
    },
    #[error("The cache restore task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl Diagnose for RestoreError {
    fn hint(&self) -> Option<String> {
        match self {
            RestoreError::Open { source, .. } => source.hint(),
            RestoreError::Task(_) => None,
        }
    }

    fn blame(&self) -> Blame {
        match self {
            RestoreError::Open { source, .. } => source.blame(),
            RestoreError::Task(_) => Blame::Internal,
        }
    }
}

/// Restores every cache of the request.
pub async fn run(req: RestoreRequest, reporter: &dyn Reporter) -> Result<Restored, RestoreError> {
    let store = crate::cache::open(
        &req.location,
        RegistryOperation::Pull,
        &req.registry,
        &req.local,
    )
    .await
    .map_err(|source| RestoreError::Open {
        location: req.location.to_string(),
        source,
    })?;
    let mut outcome = Restored::default();
    for kind in req.kinds {
        reporter.step(&format!(
            "Restoring the {} cache {}",
            kind.kind.as_str(),
            kind.key
        ));
        let store = store.clone();
        let task_kind = kind.clone();
        let result = tokio::task::spawn_blocking(move || {
            let _locks = task_kind.lock(true)?;
            kiln_cache::restore(
                store.as_ref(),
                &task_kind.key,
                &task_kind.roots,
                &RestoreOptions::default(),
            )
        })
        .await
        .map_err(RestoreError::Task)?;
        let restored = match result {
            Ok(report) => {
                let what = match report.hit {
                    Hit::Exact => "exact hit".to_string(),
                    Hit::Partial => format!(
                        "partial hit from {}",
                        report.restored_key.as_deref().unwrap_or_default()
                    ),
                    Hit::Miss => "miss".to_string(),
                };
                reporter.step(&format!(
                    "{} cache: {what}, {} files ({}) written, {} already in place",
                    kind.kind.as_str(),
                    report.counts.files_restored,
                    kiln_cli::output::human_size(report.counts.bytes_restored),
                    report.counts.files_unchanged
                ));
                // A save of these roots never takes them: someone else wrote this cache.
                let warning = report.refused.first().map(|first| {
                    format!(
                        "cache: the {} cache {} held {} entries kiln never saves there \
                         (such as `{first}`); they were left out",
                        kind.kind.as_str(),
                        report.restored_key.as_deref().unwrap_or_default(),
                        report.refused.len()
                    )
                });
                if let Some(warning) = &warning {
                    reporter.warn(warning);
                }
                KindRestored {
                    kind: kind.kind,
                    key: kind.key.to_string(),
                    hit: report.hit,
                    restored_key: report.restored_key,
                    files_restored: report.counts.files_restored,
                    bytes_restored: report.counts.bytes_restored,
                    manifest: report.manifest,
                    warning,
                }
            }
            Err(err) => {
                let warning = format!(
                    "cache: failed to restore the {} cache {} ({}); building without it",
                    kind.kind.as_str(),
                    kind.key,
                    one_line(&err)
                );
                reporter.warn(&warning);
                KindRestored {
                    kind: kind.kind,
                    key: kind.key.to_string(),
                    hit: Hit::Miss,
                    restored_key: None,
                    files_restored: 0,
                    bytes_restored: 0,
                    manifest: None,
                    warning: Some(warning),
                }
            }
        };
        outcome.kinds.push(restored);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use kiln_cache::{CacheKey, CacheKind, KeyInputs, Root, Scope, Selection};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restore_waits_for_cargos_package_cache_lock() {
        let dir = tempfile::tempdir().unwrap();
        let cargo_home = dir.path().join("cargo");
        let lock = cargo_home.join(".package-cache");
        let kind = KindPlan {
            kind: CacheKind::Cargo,
            key: CacheKey::compute(&KeyInputs {
                prefix: "t".into(),
                scope: Scope::default(),
                kind: CacheKind::Cargo,
                toolchains: Vec::new(),
                project: dir.path().to_path_buf(),
            })
            .unwrap(),
            roots: vec![Root::new("cargo-home", &cargo_home, Selection::all())],
            locks: vec![lock.clone()],
        };
        // A cargo downloading into the same home holds its lock.
        std::fs::create_dir_all(&cargo_home).unwrap();
        let held = std::fs::File::create(&lock).unwrap();
        held.lock().unwrap();
        let request = RestoreRequest {
            location: CacheLocation::Dir(dir.path().join("store")),
            kinds: vec![kind],
            registry: RegistryOptions::default(),
            local: dir.path().join("local"),
        };
        let restore = tokio::spawn(async move {
            let outcome = run(request, &crate::reporter::Silent).await.unwrap();
            (Instant::now(), outcome)
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let released = Instant::now();
        drop(held);
        let (finished, outcome) = restore.await.unwrap();
        assert!(
            finished >= released,
            "the restore did not wait for the lock"
        );
        assert_eq!(outcome.kinds[0].hit, Hit::Miss);
        assert_eq!(outcome.kinds[0].warning, None);
    }
}
