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

use kiln_cache::{CacheKey, CacheKind, LocalStore, Root, Store};
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
}

impl CacheOptions {
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
