//! kiln-cache: the keys, archive format and local store of kiln's persisted pip and
//! cargo caches.
//!
//! A key names one saved cache: `SCOPE-PREFIX-KIND-OS-ARCH-TOOLCHAINS-LOCKHASH`, where the
//! [`Scope`] says whose it is (a branch, a pull request, a protected ref). Restoring
//! looks for the exact key first, in the build's own scope and then in the scopes it
//! trusts, then for the newest entry that shares [`CacheKey::restore_prefix`] (everything
//! but the lockfile hash) in the same order: a partial hit that still saves most
//! downloads. A save only ever writes the build's own scope.
//!
//! A saved cache is a JSON [`Manifest`] plus content-defined, content-addressed zstd
//! chunks ([`archive`]). [`save`] and [`restore`] work through any [`Store`] (chunks,
//! manifests, keys): [`LocalStore`] keeps them in a directory; kiln implements the trait
//! for OCI registries. A cache may span several directories ([`Root`]). Nothing is
//! ever written outside a root ([`Error`] lists what a hostile or damaged cache is
//! refused for). [`prune`] says what of cargo's directories to save.
//!
//! # Modules
//!
//! Each module uses only modules listed below it, so their dependencies have no cycle
//! (a module that needs something from a higher one is a sign it sits too low):
//!
//! ```text
//! local     LocalStore, the directory store, with its one-directory save and restore
//! ops       save, restore and lookup through any Store; Root and the reports
//! store     the Store trait every store implements; MAX_MANIFEST_BYTES
//! extract   writes a validated manifest into a directory (ChunkSource)
//! prune     what of cargo's directories is worth saving
//! walk      Selection, and the walk listing what a save takes from a directory
//! archive   manifest, chunking, compression, digests and validation
//! par       a parallel map over the cores
//! error     the one Error enum
//! key       cache keys
//! fsutil    the one atomic write (public: kiln uses it too), mtime conversions
//! format    the format's fixed parameters (manifest version, chunk sizes, zstd level)
//! ```
//!
//! This file only declares the modules and re-exports their public items.

#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice))]

pub mod archive;
mod error;
mod extract;
mod format;
pub mod fsutil;
mod key;
mod local;
mod ops;
mod par;
pub mod prune;
mod store;
mod walk;

pub use archive::{ChunkRef, Entry, EntryKind, Manifest};
pub use error::Error;
pub use extract::{ChunkSource, ExtractCounts, extract};
pub use key::{CacheKey, CacheKind, KeyInputs, MAX_PREFIX, Scope};
pub use local::LocalStore;
pub use ops::{
    Hit, MAX_ENTRIES, RestoreOptions, RestoreReport, Root, SaveReport, lookup, restore, save,
};
pub use store::{MAX_MANIFEST_BYTES, Store};
pub use walk::Selection;
