//! The save stage: stores the caches the build filled, for the next build.
//!
//! 1. Opens the store (push access for a registry).
//! 2. For each cache, takes the manifest it was restored from, or else looks the key up
//!    (a `kiln cache save` in a later CI step than the restore), so that files unchanged
//!    since (same size and mtime) are not read again.
//! 3. Saves: chunks the store lacks go up first, the manifest next, the key last. A
//!    cache unchanged since its restore under the same key is not written at all.
//!
//! A cache that cannot be saved is reported in the outcome as a warning for that cache
//! only; the build's result does not change.

use kiln_cache::{Manifest, SaveReport};
use oci_client::RegistryOperation;

use crate::cache::{CacheLocation, KindPlan};
use crate::diagnose::{Blame, Diagnose, one_line};
use crate::registry::{RegistryError, RegistryOptions};
use crate::reporter::Reporter;
use crate::stages::restore::KindRestored;
use crate::summary::{CacheHit, CacheKindSummary};

/// What to save, where.
#[derive(Debug, Clone)]
pub struct SaveRequest {
    pub location: CacheLocation,
    pub kinds: Vec<KindPlan>,
    /// Per kind (same order): the manifest it was restored from, if any.
    pub previous: Vec<Option<Manifest>>,
    pub registry: RegistryOptions,
    /// Where a registry store keeps the chunks it downloads (`$KILN_HOME/cache`).
    pub local: std::path::PathBuf,
}

/// What the save did, per cache.
#[derive(Debug, Clone, Default)]
pub struct Saved {
    pub kinds: Vec<KindSaved>,
}

#[derive(Debug, Clone)]
pub struct KindSaved {
    pub kind: kiln_cache::CacheKind,
    pub key: String,
    /// `None` when it failed or had nothing to save.
    pub report: Option<SaveReport>,
    pub warning: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("Failed to open the cache store `{location}`")]
    Open {
        location: String,
        #[source]
        source: RegistryError,
    },
    #[error("The cache save task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl Diagnose for SaveError {
    fn hint(&self) -> Option<String> {
        match self {
            SaveError::Open { source, .. } => source.hint(),
            SaveError::Task(_) => None,
        }
    }

    fn blame(&self) -> Blame {
        match self {
            SaveError::Open { source, .. } => source.blame(),
            SaveError::Task(_) => Blame::Internal,
        }
    }
}

/// Saves every cache of the request.
pub async fn run(req: SaveRequest, reporter: &dyn Reporter) -> Result<Saved, SaveError> {
    let store = crate::cache::open(
        &req.location,
        RegistryOperation::Push,
        &req.registry,
        &req.local,
    )
    .await
    .map_err(|source| SaveError::Open {
        location: req.location.to_string(),
        source,
    })?;
    let mut outcome = Saved::default();
    let previous = req.previous.into_iter().chain(std::iter::repeat(None));
    for (kind, previous) in req.kinds.into_iter().zip(previous) {
        reporter.step(&format!(
            "Saving the {} cache {}",
            kind.kind.as_str(),
            kind.key
        ));
        let store = store.clone();
        let task_kind = kind.clone();
        let result = tokio::task::spawn_blocking(move || {
            let _locks = task_kind.lock(false)?;
            let previous = match previous {
                Some(previous) => {
                    // A registry store learns which blobs hold a manifest's chunks by
                    // reading it; this save's store did not do the restore, so it reads
                    // the restored manifest again (unchanged files reuse its chunks).
                    let _ = store.get_manifest(&previous.key);
                    Some(previous)
                }
                // Only to skip reading unchanged files: a broken entry just means none.
                None => kiln_cache::lookup(store.as_ref(), &task_kind.key)
                    .ok()
                    .flatten()
                    .map(|(_, m)| m),
            };
            kiln_cache::save(
                store.as_ref(),
                &task_kind.key,
                &task_kind.roots,
                previous.as_ref(),
            )
        })
        .await
        .map_err(SaveError::Task)?;
        let saved = match result {
            Ok(report) => {
                if report.unchanged {
                    reporter.step(&format!(
                        "{} cache unchanged since the restore: not saved",
                        kind.kind.as_str()
                    ));
                } else {
                    reporter.step(&format!(
                        "{} cache saved: {} files ({}), {} new chunks ({}), {} reused",
                        kind.kind.as_str(),
                        report.files,
                        kiln_cli::output::human_size(report.bytes_total),
                        report.chunks_written,
                        kiln_cli::output::human_size(report.bytes_written),
                        report.chunks_reused
                    ));
                }
                KindSaved {
                    kind: kind.kind,
                    key: kind.key.to_string(),
                    report: Some(report),
                    warning: None,
                }
            }
            Err(err) => {
                let warning = format!(
                    "cache: failed to save the {} cache {} ({})",
                    kind.kind.as_str(),
                    kind.key,
                    one_line(&err)
                );
                reporter.warn(&warning);
                KindSaved {
                    kind: kind.kind,
                    key: kind.key.to_string(),
                    report: None,
                    warning: Some(warning),
                }
            }
        };
        outcome.kinds.push(saved);
    }
    Ok(outcome)
}

/// One kind's line of the summary.
pub fn kind_summary(
    kind: &KindPlan,
    restored: Option<&KindRestored>,
    saved: Option<&KindSaved>,
    failed: bool,
) -> CacheKindSummary {
    let report = saved.and_then(|s| s.report.as_ref());
    CacheKindSummary {
        kind: kind.kind.as_str().to_string(),
        key: kind.key.to_string(),
        hit: match restored.map(|r| r.hit) {
            Some(kiln_cache::Hit::Exact) => CacheHit::Exact,
            Some(kiln_cache::Hit::Partial) => CacheHit::Partial,
            _ => CacheHit::Miss,
        },
        restored_key: restored.and_then(|r| r.restored_key.clone()),
        bytes_restored: restored.map_or(0, |r| r.bytes_restored),
        files_restored: restored.map_or(0, |r| r.files_restored),
        saved: report.is_some_and(|r| !r.unchanged),
        save_skipped: match (saved, report) {
            (_, Some(r)) if r.unchanged => Some("unchanged since the restore".into()),
            (Some(s), None) => Some(
                s.warning
                    .clone()
                    .unwrap_or_else(|| "nothing to save".to_string()),
            ),
            (None, _) if failed => Some("the build failed before its downloads finished".into()),
            (None, _) => Some("not saved".into()),
            _ => None,
        },
        bytes_saved: report.map_or(0, |r| r.bytes_total),
        bytes_uploaded: report.map_or(0, |r| r.bytes_written),
        chunks_uploaded: report.map_or(0, |r| r.chunks_written),
        chunks_reused: report.map_or(0, |r| r.chunks_reused),
    }
}
