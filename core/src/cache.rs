//! kiln's persisted pip and cargo caches: what is cached for a plan, under which key,
//! in which store, and how `kiln build` restores and saves them without ever failing
//! the build over them.
//!
//! 1. [`CacheLocation`]: a directory ([`kiln_cache::LocalStore`], by default
//!    `$KILN_HOME/cache`, so a fresh machine works offline) or an OCI registry
//!    repository ([`RegistryStore`]).
//! 2. [`kinds`]: for a Rust plan, cargo's registry index, `.crate` archives and git
//!    databases (of the packages `Cargo.lock` names) plus the target directory's
//!    `release/` and `wasm32-wasip1/`, pruned; for a Python plan, pip's cache directory
//!    and kiln's componentize-py virtual environment. Keys hash the rustc version (or
//!    componentize-py's and the host Python's), the target triple, the project's name,
//!    OS and architecture, then the lockfiles.
//! 3. [`Session`]: restores before the build stage and saves after it. Any cache failure
//!    becomes a warning; the build goes on cold.

use crate::error::one_line;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use kiln_cache::archive::{self, ChunkRef};
use kiln_cache::{
    CacheKey, CacheKind, ChunkSource, Error as CacheError, KeyInputs, LocalStore, Manifest, Root,
    Selection, Store, prune,
};
use oci_client::{Reference, RegistryOperation};
use serde::Deserialize;

use crate::plan::{Plan, ToolchainPlan};
use crate::project::ProjectKind;
use crate::registry::{Registry, RegistryError, RegistryOptions};
use crate::reporter::{Reporter, Stage};
use crate::stages::build::python::{COMPONENTIZE_PY_VERSION, ComponentizePy};
use crate::stages::build::rust::{RustToolchain, TARGET};
use crate::stages::{restore, save};
use crate::summary::{CacheHit, CacheKindSummary, CacheSummary, StageTiming};

/// The default `--cache-prefix`.
pub const DEFAULT_PREFIX: &str = "kiln";

/// Media types of a cache in a registry.
pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.cache.v1";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.kiln.cache.config.v1+json";
pub const CHUNK_MEDIA_TYPE: &str = "application/vnd.kiln.cache.chunk.v1+zstd";
/// Annotations of a cache manifest in a registry.
pub const KEY_ANNOTATION: &str = "dev.kiln.cache.key";
pub const SAVED_AT_ANNOTATION: &str = "dev.kiln.cache.saved-at-ns";

/// Where caches are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    Dir(PathBuf),
    /// A repository; tags are derived from keys.
    Registry(Reference),
}

impl CacheLocation {
    /// `--cache`: a directory (absolute, starting with `.` or `~`, or existing), or
    /// `REGISTRY/REPOSITORY` whose first component names a host (has a `.` or `:`, or is
    /// `localhost`).
    pub fn parse(text: &str) -> Result<CacheLocation, RegistryError> {
        if text.starts_with(['/', '.', '~'])
            || Path::new(text).is_dir()
            || !crate::registry::looks_like_reference(text)
        {
            return Ok(CacheLocation::Dir(PathBuf::from(text)));
        }
        let reference = crate::registry::parse_reference(text, "kiln-cache")?;
        Ok(CacheLocation::Registry(reference))
    }

    /// `$KILN_HOME/cache`.
    pub fn default_dir() -> CacheLocation {
        CacheLocation::Dir(local_dir())
    }
}

impl std::fmt::Display for CacheLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheLocation::Dir(dir) => write!(f, "{}", dir.display()),
            CacheLocation::Registry(r) => write!(f, "{}/{}", r.registry(), r.repository()),
        }
    }
}

/// `kiln build`'s cache settings.
#[derive(Debug, Clone, Default)]
pub struct CacheOptions {
    /// `None`: `--no-cache`.
    pub location: Option<CacheLocation>,
    /// `--cache-prefix` (empty means [`DEFAULT_PREFIX`]).
    pub prefix: String,
    pub registry: RegistryOptions,
}

/// `$KILN_HOME/cache`: the default store, and a registry store's local chunk copies.
pub fn local_dir() -> PathBuf {
    crate::settings::kiln_home().join("cache")
}

/// The directory pip caches in: `PIP_CACHE_DIR` when set, else `$KILN_HOME/pip` (kiln
/// sets it for every pip it runs, so the cache is one kiln can save).
pub fn pip_cache_dir() -> PathBuf {
    match crate::env::var("PIP_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => crate::settings::kiln_home().join("pip"),
    }
}

/// `CARGO_HOME`, else `~/.cargo`.
pub fn cargo_home() -> PathBuf {
    match crate::env::var("CARGO_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => crate::env::var("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(".cargo"),
    }
}

/// One cache of a plan: its key and the directories it holds.
#[derive(Debug, Clone)]
pub struct KindPlan {
    pub kind: CacheKind,
    pub key: CacheKey,
    pub roots: Vec<Root>,
}

/// What `plan` caches: cargo for Rust, pip for Python.
pub fn kinds(plan: &Plan, prefix: &str) -> std::io::Result<Vec<KindPlan>> {
    let prefix = if prefix.is_empty() {
        DEFAULT_PREFIX
    } else {
        prefix
    };
    let project = format!("project {}", plan.project.name);
    match (&plan.project.kind, &plan.toolchain) {
        (ProjectKind::Rust(rust), ToolchainPlan::Rust { candidates }) => {
            let mut toolchains = vec![format!("target {TARGET}"), project];
            if let Some(first) = candidates.first() {
                toolchains.push(match first {
                    RustToolchain::Installed { version, .. }
                    | RustToolchain::Rustup { version, .. } => version.clone(),
                    RustToolchain::BuildStd { version, .. } => format!("{version} build-std"),
                });
            }
            let key = CacheKey::compute(&KeyInputs {
                prefix: prefix.into(),
                kind: CacheKind::Cargo,
                toolchains,
                project: rust.workspace_root.clone(),
            })?;
            let lock = prune::CargoLock::read(&rust.workspace_root.join("Cargo.lock"))?;
            let home = cargo_home();
            let local: Vec<&str> = lock.local.iter().map(String::as_str).collect();
            let mut target =
                prune::cargo_target_with(&rust.target_dir, &local, Some(&lock.dependencies()))?;
            target.include = Some(
                ["release", TARGET, "CACHEDIR.TAG", ".rustc_info.json"]
                    .iter()
                    .map(PathBuf::from)
                    .collect(),
            );
            Ok(vec![KindPlan {
                kind: CacheKind::Cargo,
                key,
                roots: vec![
                    Root::new("cargo-home", &home, prune::cargo_home_for(&home, &lock)?),
                    Root::new("target", &rust.target_dir, target),
                ],
            }])
        }
        (ProjectKind::Python(_), ToolchainPlan::Python(toolchain)) => {
            let python = std::fs::canonicalize(&toolchain.python)
                .unwrap_or_else(|_| toolchain.python.clone());
            let tools = crate::settings::kiln_home().join("tools");
            let key = CacheKey::compute(&KeyInputs {
                prefix: prefix.into(),
                kind: CacheKind::Pip,
                toolchains: vec![
                    format!("componentize-py {COMPONENTIZE_PY_VERSION}"),
                    format!("python {}", python.display()),
                    format!("tools {}", tools.display()),
                    project,
                ],
                project: plan.project.root.clone(),
            })?;
            let mut roots = vec![Root::new("pip", pip_cache_dir(), Selection::all())];
            let venv = format!("componentize-py-{COMPONENTIZE_PY_VERSION}");
            // A venv whose python is a symlink to the host's cannot be restored (links
            // out of a cache are refused): only venvs made with `--copies` are kept.
            let python_link = tools.join(&venv).join("bin/python");
            let linked =
                std::fs::symlink_metadata(&python_link).is_ok_and(|m| m.file_type().is_symlink());
            if !linked {
                roots.push(Root::new(
                    "tools",
                    &tools,
                    Selection {
                        include: Some(vec![PathBuf::from(venv)]),
                        exclude: Vec::new(),
                    },
                ));
            }
            Ok(vec![KindPlan {
                kind: CacheKind::Pip,
                key,
                roots,
            }])
        }
        _ => Ok(Vec::new()),
    }
}

/// The plan to build with after a restore: componentize-py, to be provisioned when the
/// plan was made, may have been restored.
pub fn replan(plan: &Plan) -> Option<Plan> {
    if let ToolchainPlan::Python(py) = &plan.toolchain
        && let ComponentizePy::Provision { venv } = &py.componentize_py
    {
        let path = venv.join("bin").join("componentize-py");
        if path.is_file() {
            let mut plan = plan.clone();
            if let ToolchainPlan::Python(py) = &mut plan.toolchain {
                py.componentize_py = ComponentizePy::Found { path };
            }
            return Some(plan);
        }
    }
    None
}

/// A store, opened for reading (restore) or writing (save).
pub type SharedStore = Arc<dyn Store + Send + Sync>;

/// Opens the store at `location`.
pub async fn open(
    location: &CacheLocation,
    operation: RegistryOperation,
    options: &RegistryOptions,
) -> Result<SharedStore, RegistryError> {
    Ok(match location {
        CacheLocation::Dir(dir) => Arc::new(LocalStore::new(dir)),
        CacheLocation::Registry(reference) => {
            let registry = Registry::connect(reference.clone(), operation, options.clone()).await?;
            Arc::new(RegistryStore {
                registry,
                handle: tokio::runtime::Handle::current(),
                local: LocalStore::new(local_dir()),
                blobs: Mutex::new(HashMap::new()),
            })
        }
    })
}

/// A cache store in an OCI registry repository.
///
/// A saved cache is an OCI image manifest tagged with its key (`artifactType`
/// [`ARTIFACT_TYPE`]): the config blob holds kiln-cache's manifest and the map from each
/// chunk (named by its uncompressed bytes) to the blob holding it compressed; every
/// chunk blob is a layer, so the registry keeps it. Chunks go up first (HEAD before
/// each, none for chunks the restored cache already had), the config next, the tag
/// last. Downloaded chunks are kept in `$KILN_HOME/cache`, so a restore fetches only
/// what this machine lacks.
///
/// Its methods block on the runtime: call them from blocking threads.
pub struct RegistryStore {
    registry: Registry,
    handle: tokio::runtime::Handle,
    local: LocalStore,
    /// chunk digest → (blob digest, blob size), for chunks known to be in the registry.
    blobs: Mutex<HashMap<String, (String, u64)>>,
}

impl std::fmt::Debug for RegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryStore")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// The config blob of a cache in a registry.
#[derive(Debug, serde::Serialize, Deserialize)]
struct RegistryConfig {
    schema_version: u32,
    manifest: serde_json::Value,
    blobs: BTreeMap<String, (String, u64)>,
}

/// An OCI tag for a key: keys are `[A-Za-z0-9_.-]` already; a tag cannot start with
/// `.` or `-` and has at most 128 characters.
pub fn tag_for(key: &str) -> String {
    let mut tag: String = key.chars().take(128).collect();
    if tag.starts_with(['.', '-']) {
        tag.replace_range(..1, "_");
    }
    tag
}

fn remote(what: &str, err: RegistryError) -> CacheError {
    CacheError::Store {
        what: what.to_string(),
        source: Box::new(err),
    }
}

impl RegistryStore {
    fn at(&self, key: &str) -> Registry {
        self.registry.at_tag(&tag_for(key))
    }

    /// The manifest JSON under `key`'s tag, if the tag is a cache of that key.
    fn cache_manifest(&self, key: &str) -> Result<Option<serde_json::Value>, CacheError> {
        let found = self
            .handle
            .block_on(self.at(key).fetch_manifest())
            .map_err(|e| remote(&format!("read cache `{key}`"), e))?;
        let Some((bytes, _)) = found else {
            return Ok(None);
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| CacheError::ManifestParse {
                key: key.to_owned(),
                source,
            })?;
        let is_cache = value["annotations"][KEY_ANNOTATION].as_str() == Some(key);
        Ok(is_cache.then_some(value))
    }
}

impl ChunkSource for RegistryStore {
    fn chunk(&self, chunk: &ChunkRef) -> Result<Vec<u8>, CacheError> {
        match self.local.chunk(chunk) {
            Ok(data) => return Ok(data),
            // Missing, or damaged (and dropped): fetch it again.
            Err(err) if err.is_corrupt_cache() => {}
            Err(err) => return Err(err),
        }
        let blob = self
            .blobs
            .lock()
            .expect("not poisoned")
            .get(&chunk.digest)
            .cloned();
        let Some((blob, size)) = blob else {
            return Err(CacheError::ChunkMissing {
                digest: chunk.digest.clone(),
            });
        };
        let max = size.max(archive::CHUNK_MAX as u64 + 1024 * 1024);
        let stored = self
            .handle
            .block_on(self.registry.pull_blob_bytes(&blob, max))
            .map_err(|e| remote(&format!("download chunk `{}`", chunk.digest), e))?;
        let data = archive::decompress(&stored[..], chunk)?;
        // Best effort: the next restore on this machine needs no download.
        let _ = self.local.put_stored_chunk(&chunk.digest, &stored);
        Ok(data)
    }
}

impl Store for RegistryStore {
    fn put_chunk(&self, data: &[u8]) -> Result<(ChunkRef, Option<u64>), CacheError> {
        let chunk = ChunkRef {
            digest: archive::digest(data),
            size: data.len() as u64,
        };
        if self
            .blobs
            .lock()
            .expect("not poisoned")
            .contains_key(&chunk.digest)
        {
            return Ok((chunk, None));
        }
        let compressed = archive::compress(data).map_err(|source| CacheError::Write {
            path: PathBuf::from(&chunk.digest),
            source,
        })?;
        let blob = archive::digest(&compressed);
        let size = compressed.len() as u64;
        let exists = self
            .handle
            .block_on(self.registry.has_blob(&blob))
            .map_err(|e| remote("check for a chunk", e))?;
        let written = if exists {
            None
        } else {
            self.handle
                .block_on(
                    self.registry
                        .push_blob_bytes(Bytes::from(compressed), &blob),
                )
                .map_err(|e| remote("upload a chunk", e))?;
            Some(size)
        };
        self.blobs
            .lock()
            .expect("not poisoned")
            .insert(chunk.digest.clone(), (blob, size));
        Ok((chunk, written))
    }

    fn get_manifest(&self, key: &str) -> Result<Option<Manifest>, CacheError> {
        let Some(value) = self.cache_manifest(key)? else {
            return Ok(None);
        };
        let config_digest = value["config"]["digest"].as_str().unwrap_or_default();
        let config_size = value["config"]["size"].as_u64().unwrap_or(u64::MAX);
        if archive::digest_hex(config_digest).is_none() {
            return Err(CacheError::ManifestDigest {
                key: key.to_owned(),
                expected: config_digest.to_owned(),
                actual: String::new(),
            });
        }
        if config_size > kiln_cache::MAX_MANIFEST_BYTES {
            return Err(CacheError::TooLarge {
                total: config_size,
                limit: kiln_cache::MAX_MANIFEST_BYTES,
            });
        }
        // oci-client checks the blob against its digest.
        let bytes = self
            .handle
            .block_on(
                self.registry
                    .pull_blob_bytes(config_digest, kiln_cache::MAX_MANIFEST_BYTES),
            )
            .map_err(|e| remote(&format!("download the manifest of cache `{key}`"), e))?;
        let parse_err = |source| CacheError::ManifestParse {
            key: key.to_owned(),
            source,
        };
        let config: RegistryConfig = serde_json::from_slice(&bytes).map_err(parse_err)?;
        let manifest_bytes = serde_json::to_vec(&config.manifest).map_err(parse_err)?;
        let manifest = Manifest::from_slice(key, &manifest_bytes)?;
        self.blobs
            .lock()
            .expect("not poisoned")
            .extend(config.blobs);
        Ok(Some(manifest))
    }

    fn put_manifest(&self, manifest: &Manifest) -> Result<String, CacheError> {
        let mut blobs = BTreeMap::new();
        {
            let known = self.blobs.lock().expect("not poisoned");
            for chunk in manifest.entries.iter().flat_map(|e| &e.chunks) {
                let blob = known
                    .get(&chunk.digest)
                    .ok_or_else(|| CacheError::ChunkMissing {
                        digest: chunk.digest.clone(),
                    })?;
                blobs.insert(chunk.digest.clone(), blob.clone());
            }
        }
        let layers: BTreeMap<&String, u64> = blobs.values().map(|(d, s)| (d, *s)).collect();
        let config = RegistryConfig {
            schema_version: 1,
            manifest: serde_json::to_value(manifest).expect("a manifest serializes"),
            blobs: blobs.clone(),
        };
        let config_bytes = serde_json::to_vec(&config).expect("a config serializes");
        let config_digest = archive::digest(&config_bytes);
        let exists = self
            .handle
            .block_on(self.registry.has_blob(&config_digest))
            .map_err(|e| remote("check for the cache manifest", e))?;
        if !exists {
            self.handle
                .block_on(
                    self.registry
                        .push_blob_bytes(Bytes::from(config_bytes.clone()), &config_digest),
                )
                .map_err(|e| remote("upload the cache manifest", e))?;
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let oci = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::oci::MANIFEST_MEDIA_TYPE,
            "artifactType": ARTIFACT_TYPE,
            "config": {
                "mediaType": CONFIG_MEDIA_TYPE,
                "digest": config_digest,
                "size": config_bytes.len(),
            },
            "layers": layers.iter().map(|(digest, size)| serde_json::json!({
                "mediaType": CHUNK_MEDIA_TYPE,
                "digest": digest,
                "size": size,
            })).collect::<Vec<_>>(),
            "annotations": {
                KEY_ANNOTATION: manifest.key,
                SAVED_AT_ANNOTATION: now.as_nanos().to_string(),
                "org.opencontainers.image.created":
                    humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            },
        });
        let bytes = serde_json::to_vec(&oci).expect("a manifest serializes");
        self.handle
            .block_on(
                self.at(&manifest.key)
                    .push_manifest_bytes(bytes, crate::oci::MANIFEST_MEDIA_TYPE),
            )
            .map_err(|e| remote(&format!("tag cache `{}`", manifest.key), e))?;
        Ok(config_digest)
    }

    fn parallelism(&self) -> usize {
        // Requests wait on the network, not the cores.
        8
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<(String, u64)>, CacheError> {
        let tags = self
            .handle
            .block_on(self.registry.list_tags())
            .map_err(|e| remote("list the cache repository's tags", e))?;
        let tag_prefix = tag_for(prefix);
        let mut keys = Vec::new();
        for tag in tags.iter().filter(|t| t.starts_with(&tag_prefix)) {
            let value = match self
                .handle
                .block_on(self.registry.at_tag(tag).fetch_manifest())
            {
                Ok(Some((bytes, _))) => serde_json::from_slice::<serde_json::Value>(&bytes).ok(),
                Ok(None) => None,
                Err(err) => return Err(remote("read a cache's manifest", err)),
            };
            let Some(value) = value else { continue };
            let annotations = &value["annotations"];
            let (Some(key), Some(at)) = (
                annotations[KEY_ANNOTATION].as_str(),
                annotations[SAVED_AT_ANNOTATION]
                    .as_str()
                    .and_then(|s| s.parse::<u64>().ok()),
            ) else {
                continue;
            };
            if key.starts_with(prefix) {
                keys.push((key.to_owned(), at));
            }
        }
        Ok(keys)
    }
}

/// The caches of one `kiln build`: restored before the build stage, saved after.
#[derive(Debug)]
pub struct Session {
    options: CacheOptions,
    state: tokio::sync::Mutex<Option<State>>,
    /// The build stage succeeded: a later failure (push, sign) does not make the caches
    /// it filled worth less.
    built: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct State {
    plan: Plan,
    location: CacheLocation,
    kinds: Vec<KindPlan>,
    restored: Vec<restore::KindRestored>,
    restore_time: Duration,
    warnings: Vec<String>,
}

impl Session {
    pub fn new(options: &CacheOptions) -> Session {
        Session {
            options: options.clone(),
            state: tokio::sync::Mutex::new(None),
            built: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Records that the build stage succeeded.
    pub fn mark_built(&self) {
        self.built.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the build stage succeeded.
    pub fn was_built(&self) -> bool {
        self.built.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn enabled(&self) -> bool {
        self.options.location.is_some()
    }

    /// How long the restore took, if one ran.
    pub async fn restore_time(&self) -> Option<Duration> {
        self.state.lock().await.as_ref().map(|s| s.restore_time)
    }

    /// Restores the plan's caches; returns the plan to build with when the restore
    /// changed it (see [`replan`]). Never fails: problems become warnings.
    pub async fn restore(&self, plan: &Plan, reporter: &dyn Reporter) -> Option<Plan> {
        let location = self.options.location.clone()?;
        reporter.stage_started(Stage::Restore);
        let started = Instant::now();
        let mut warnings = Vec::new();
        let kinds = match kinds(plan, &self.options.prefix) {
            Ok(kinds) => kinds,
            Err(err) => {
                let warning = format!(
                    "cache: failed to compute the cache keys: {}",
                    one_line(&err)
                );
                reporter.warn(&warning);
                warnings.push(warning);
                Vec::new()
            }
        };
        let restored = if kinds.is_empty() {
            Vec::new()
        } else {
            let request = restore::RestoreRequest {
                location: location.clone(),
                kinds: kinds.clone(),
                registry: self.options.registry.clone(),
            };
            match restore::run(request, reporter).await {
                Ok(outcome) => {
                    warnings.extend(outcome.kinds.iter().filter_map(|k| k.warning.clone()));
                    outcome.kinds
                }
                Err(err) => {
                    let warning = format!("cache: {}; building without it", one_line(&err));
                    reporter.warn(&warning);
                    warnings.push(warning);
                    Vec::new()
                }
            }
        };
        let restore_time = started.elapsed();
        reporter.stage_finished(Stage::Restore, restore_time);
        *self.state.lock().await = Some(State {
            plan: plan.clone(),
            location,
            kinds,
            restored,
            restore_time,
            warnings,
        });
        replan(plan)
    }

    /// Saves what the restore began with, after the build (`failed`: it did not
    /// succeed). Returns the summary's cache section and the save stage's timing, or
    /// nothing when no restore ran (the build was skipped).
    pub async fn save(
        &self,
        failed: bool,
        reporter: &dyn Reporter,
    ) -> Option<(CacheSummary, Option<StageTiming>)> {
        let mut state = self.state.lock().await.take()?;
        let mut summary = CacheSummary {
            store: state.location.to_string(),
            kinds: Vec::new(),
            restore_seconds: state.restore_time.as_secs_f64(),
            save_seconds: 0.0,
            warnings: Vec::new(),
        };
        let mut timing = None;
        // After a failure, only a cargo cache whose downloads finished is worth keeping
        // (the next run does not download again); pip's cannot tell, so it is not saved.
        // Selections depend on what the build left on disk: computed again now.
        if let Ok(fresh) = kinds(&state.plan, &self.options.prefix) {
            state.kinds = fresh;
        }
        let save_kinds: Vec<KindPlan> = state
            .kinds
            .iter()
            .filter(|k| !failed || cargo_downloads_complete(&state.plan, k))
            .cloned()
            .collect();
        let mut saved = Vec::new();
        if !save_kinds.is_empty() {
            reporter.stage_started(Stage::Save);
            let started = Instant::now();
            let previous = save_kinds
                .iter()
                .map(|k| {
                    state
                        .restored
                        .iter()
                        .find(|r| r.kind == k.kind)
                        .and_then(|r| r.manifest.clone())
                })
                .collect();
            let request = save::SaveRequest {
                location: state.location.clone(),
                kinds: save_kinds,
                previous,
                registry: self.options.registry.clone(),
            };
            match save::run(request, reporter).await {
                Ok(outcome) => {
                    state
                        .warnings
                        .extend(outcome.kinds.iter().filter_map(|k| k.warning.clone()));
                    saved = outcome.kinds;
                }
                Err(err) => {
                    let warning = format!("cache: {}; not saved", one_line(&err));
                    reporter.warn(&warning);
                    state.warnings.push(warning);
                }
            }
            let elapsed = started.elapsed();
            reporter.stage_finished(Stage::Save, elapsed);
            summary.save_seconds = elapsed.as_secs_f64();
            timing = Some(StageTiming {
                stage: Stage::Save,
                seconds: elapsed.as_secs_f64(),
            });
        }
        for kind in &state.kinds {
            let restored = state.restored.iter().find(|r| r.kind == kind.kind);
            let saved = saved.iter().find(|s| s.kind == kind.kind);
            summary
                .kinds
                .push(kind_summary(kind, restored, saved, failed));
        }
        summary.warnings = state.warnings;
        Some((summary, timing))
    }
}

fn cargo_downloads_complete(plan: &Plan, kind: &KindPlan) -> bool {
    let ProjectKind::Rust(rust) = &plan.project.kind else {
        return false;
    };
    kind.kind == CacheKind::Cargo
        && prune::CargoLock::read(&rust.workspace_root.join("Cargo.lock"))
            .is_ok_and(|lock| prune::downloads_complete(&cargo_home(), &lock))
}

/// One kind's line of the summary.
pub fn kind_summary(
    kind: &KindPlan,
    restored: Option<&restore::KindRestored>,
    saved: Option<&save::KindSaved>,
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

/// The cache settings of `--cache`, `--no-cache` and `--cache-prefix`.
pub fn options(
    args: &crate::cli::CacheArgs,
    registry: RegistryOptions,
) -> Result<CacheOptions, RegistryError> {
    let location = if args.no_cache {
        None
    } else {
        Some(match &args.cache {
            Some(text) => CacheLocation::parse(text)?,
            None => CacheLocation::default_dir(),
        })
    };
    Ok(CacheOptions {
        location,
        prefix: args.cache_prefix.clone(),
        registry,
    })
}

/// `kiln cache key|restore|save`.
pub async fn command(
    command: crate::cli::CacheCommand,
    registry: RegistryOptions,
    output: crate::cli::OutputFormat,
    printer: &crate::printer::Printer,
) -> anyhow::Result<u8> {
    use crate::cli::{CacheCommand, CacheKindArg, OutputFormat};
    use anyhow::Context as _;

    let plan_of = |args: &crate::cli::ProjectArgs| -> anyhow::Result<Plan> {
        let settings = crate::settings::Settings::resolve(args)?;
        Plan::compute(&settings)
    };
    match command {
        CacheCommand::Key(args) => {
            let plan = plan_of(&args.project)?;
            let wanted = args.kind.map(|k| match k {
                CacheKindArg::Pip => CacheKind::Pip,
                CacheKindArg::Cargo => CacheKind::Cargo,
            });
            let all =
                kinds(&plan, &args.cache_prefix).context("Failed to compute the cache keys")?;
            let selected: Vec<&KindPlan> = all
                .iter()
                .filter(|k| wanted.is_none_or(|w| w == k.kind))
                .collect();
            if selected.is_empty() {
                anyhow::bail!(
                    "A {} project has no `{}` cache",
                    plan.project.kind.language(),
                    wanted.map_or("", CacheKind::as_str)
                );
            }
            match output {
                OutputFormat::Json => printer.data(
                    &selected
                        .iter()
                        .map(|k| {
                            serde_json::json!({
                                "kind": k.kind.as_str(),
                                "key": k.key.to_string(),
                                "restore_prefix": format!("{}-", k.key.restore_prefix()),
                                "paths": k.roots.iter().map(|r| r.dir.clone()).collect::<Vec<_>>(),
                            })
                        })
                        .collect::<Vec<_>>(),
                ),
                OutputFormat::Human =>
                {
                    #[allow(clippy::print_stdout)]
                    for k in &selected {
                        if wanted.is_some() {
                            println!("{}", k.key);
                        } else {
                            println!("{} {}", k.kind.as_str(), k.key);
                        }
                    }
                }
            }
            Ok(0)
        }
        CacheCommand::Restore(args)
        | CacheCommand::Save(crate::cli::CacheSaveArgs { run: args, .. })
            if args.cache.no_cache =>
        {
            let _ = args;
            printer.info("caching is off (--no-cache): nothing to do");
            Ok(0)
        }
        CacheCommand::Restore(args) => {
            let plan = plan_of(&args.project)?;
            let options = options(&args.cache, registry)?;
            let location = options.location.clone().expect("caching is on");
            let kinds =
                kinds(&plan, &options.prefix).context("Failed to compute the cache keys")?;
            let restored = restore::run(
                restore::RestoreRequest {
                    location: location.clone(),
                    kinds: kinds.clone(),
                    registry: options.registry,
                },
                printer,
            )
            .await;
            let summary = match restored {
                Ok(outcome) => cache_summary(&location, &kinds, Some(&outcome), None),
                Err(err) => {
                    let warning = format!("cache: {}; nothing restored", one_line(&err));
                    printer.warn(&warning);
                    let mut summary = cache_summary(&location, &kinds, None, None);
                    summary.warnings.push(warning);
                    summary
                }
            };
            show(&summary, output, printer);
            Ok(0)
        }
        CacheCommand::Save(crate::cli::CacheSaveArgs {
            run: args,
            after_failure,
        }) => {
            let plan = plan_of(&args.project)?;
            let options = options(&args.cache, registry)?;
            let location = options.location.clone().expect("caching is on");
            let mut kinds =
                kinds(&plan, &options.prefix).context("Failed to compute the cache keys")?;
            // The rule `kiln build` applies to its own save after a failure.
            if after_failure {
                kinds.retain(|kind| cargo_downloads_complete(&plan, kind));
                if kinds.is_empty() {
                    printer.info("after a failed build nothing is worth saving: not saved");
                    return Ok(0);
                }
            }
            let saved = save::run(
                save::SaveRequest {
                    location: location.clone(),
                    kinds: kinds.clone(),
                    previous: Vec::new(),
                    registry: options.registry,
                },
                printer,
            )
            .await;
            let summary = match saved {
                Ok(outcome) => cache_summary(&location, &kinds, None, Some(&outcome)),
                Err(err) => {
                    let warning = format!("cache: {}; nothing saved", one_line(&err));
                    printer.warn(&warning);
                    let mut summary = cache_summary(&location, &kinds, None, None);
                    summary.warnings.push(warning);
                    summary
                }
            };
            show(&summary, output, printer);
            Ok(0)
        }
    }
}

fn cache_summary(
    location: &CacheLocation,
    kinds: &[KindPlan],
    restored: Option<&restore::Restored>,
    saved: Option<&save::Saved>,
) -> CacheSummary {
    let mut warnings = Vec::new();
    let kinds = kinds
        .iter()
        .map(|k| {
            let r = restored.and_then(|r| r.kinds.iter().find(|x| x.kind == k.kind));
            let s = saved.and_then(|s| s.kinds.iter().find(|x| x.kind == k.kind));
            warnings.extend(r.and_then(|r| r.warning.clone()));
            warnings.extend(s.and_then(|s| s.warning.clone()));
            kind_summary(k, r, s, false)
        })
        .collect();
    CacheSummary {
        store: location.to_string(),
        kinds,
        restore_seconds: 0.0,
        save_seconds: 0.0,
        warnings,
    }
}

fn show(
    summary: &CacheSummary,
    output: crate::cli::OutputFormat,
    printer: &crate::printer::Printer,
) {
    for kind in &summary.kinds {
        printer.info(&format!(
            "cache      {} {} ({}): {} restored, {} uploaded in {} chunks",
            kind.kind,
            kind.key,
            kind.hit,
            crate::summary::human_size(kind.bytes_restored),
            crate::summary::human_size(kind.bytes_uploaded),
            kind.chunks_uploaded
        ));
    }
    if output == crate::cli::OutputFormat::Json {
        printer.data(summary);
    }
}
