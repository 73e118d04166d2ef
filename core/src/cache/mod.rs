//! kiln's persisted pip and cargo caches: where they are kept and how a build's caches
//! are described. The restore and save stages do the work; each language says what it
//! caches ([`crate::stages::build::Language::cache_kinds`]).
//!
//! 1. [`CacheLocation`]: a directory ([`kiln_cache::LocalStore`], by default
//!    `$KILN_HOME/cache`, so a fresh machine works offline) or an OCI registry
//!    repository ([`RegistryStore`]).
//! 2. [`KindPlan`]: one cache of a build, its key and the directories it holds.

pub mod registry;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_cache::{CacheKey, CacheKind, LocalStore, Root, Scope, Store};
use oci_client::{Reference, RegistryOperation};

use crate::registry::{Registry, RegistryError, RegistryOptions};

pub use registry::RegistryStore;

/// The default `--cache-prefix`.
pub const DEFAULT_PREFIX: &str = "kiln";

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
    pub fn default_dir(home: &crate::settings::KilnHome) -> CacheLocation {
        CacheLocation::Dir(home.cache())
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
    /// Whose caches this build's are.
    pub scope: Scope,
}

impl CacheOptions {
    /// `--cache-prefix`, `--cache-scope` and `--cache-read-scope` at `location`. The
    /// scope is the CI's ([`crate::platform::cache_scope`]) unless `--cache-scope` names
    /// one, which then reads only itself and the `--cache-read-scope`s.
    pub fn named(
        location: Option<CacheLocation>,
        naming: &kiln_cli::CacheNamingArgs,
        env: &crate::env::Env,
    ) -> CacheOptions {
        let scope = match naming.cache_scope.as_deref().filter(|s| !s.is_empty()) {
            Some(name) => Scope::new(name),
            None => crate::platform::cache_scope(env),
        };
        CacheOptions {
            location,
            prefix: naming.cache_prefix.clone(),
            scope: naming
                .cache_read_scope
                .iter()
                .filter(|s| !s.is_empty())
                .fold(scope, |scope, other| scope.reading(other.as_str())),
        }
    }

    /// What a key is computed from, for a cache of `kind` with these `toolchains`.
    pub fn key_inputs(
        &self,
        kind: CacheKind,
        toolchains: Vec<String>,
        project: &Path,
    ) -> kiln_cache::KeyInputs {
        kiln_cache::KeyInputs {
            prefix: self.prefix().to_string(),
            scope: self.scope.clone(),
            kind,
            toolchains,
            project: project.to_path_buf(),
        }
    }

    /// The prefix keys start with.
    pub fn prefix(&self) -> &str {
        if self.prefix.is_empty() {
            DEFAULT_PREFIX
        } else {
            &self.prefix
        }
    }
}

/// One cache of a plan: its key and the directories it holds.
#[derive(Debug, Clone)]
pub struct KindPlan {
    pub kind: CacheKind,
    pub key: CacheKey,
    pub roots: Vec<Root>,
    /// The tool's own lock files over those directories, taken in this order (cargo's
    /// `.package-cache`, then `.package-cache-mutate`).
    pub locks: Vec<PathBuf>,
}

impl KindPlan {
    /// Takes the tool's own locks (`flock`, as the tool does): exclusive while a restore
    /// writes into its directories, shared while a save reads them, so a build sharing
    /// the directory (two jobs on one runner, one `CARGO_HOME`) waits instead of
    /// reading half-restored files. Held until the files are dropped.
    pub fn lock(&self, exclusive: bool) -> Result<Vec<std::fs::File>, kiln_cache::Error> {
        self.locks
            .iter()
            .map(|path| {
                let failed = |source| kiln_cache::Error::Write {
                    path: path.clone(),
                    source,
                };
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(failed)?;
                }
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
                    .map_err(failed)?;
                if exclusive {
                    file.lock()
                } else {
                    file.lock_shared()
                }
                .map_err(failed)?;
                Ok(file)
            })
            .collect()
    }
}

/// A store, opened for reading (restore) or writing (save).
pub type SharedStore = Arc<dyn Store + Send + Sync>;

/// Opens the store at `location`; a registry store keeps downloaded chunks in `local`.
pub async fn open(
    location: &CacheLocation,
    operation: RegistryOperation,
    options: &RegistryOptions,
    local: &Path,
) -> Result<SharedStore, RegistryError> {
    Ok(match location {
        CacheLocation::Dir(dir) => Arc::new(LocalStore::new(dir)),
        CacheLocation::Registry(reference) => {
            let registry = Registry::connect(reference.clone(), operation, options.clone()).await?;
            Arc::new(RegistryStore::new(registry, LocalStore::new(local)))
        }
    })
}
