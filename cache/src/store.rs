//! What every store implements ([`Store`]): the local directory here, an OCI registry
//! in kiln. A store keeps chunks by digest and manifests by key; it knows nothing of
//! directories: [`crate::save`] and [`crate::restore`] walk and write them through any
//! store.

use crate::archive::{ChunkRef, Manifest};
use crate::error::Error;
use crate::extract::ChunkSource;
use crate::par;

/// A manifest larger than this is refused before it is parsed (by every store).
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;

/// Where saved caches live. Chunks are named by the sha256 of their uncompressed bytes;
/// a key names a manifest; the key is written last, so readers see whole caches only.
pub trait Store: ChunkSource {
    /// Stores one chunk unless the store has it; returns its reference and, when it was
    /// written, its compressed size.
    fn put_chunk(&self, data: &[u8]) -> Result<(ChunkRef, Option<u64>), Error>;
    /// The manifest saved under `key`, checked against its digest; `None` when the key
    /// was never saved.
    fn get_manifest(&self, key: &str) -> Result<Option<Manifest>, Error>;
    /// Writes `manifest` and then points its key at it; returns the manifest's digest.
    fn put_manifest(&self, manifest: &Manifest) -> Result<String, Error>;
    /// The saved keys starting with `prefix`, each with when it was saved (nanoseconds
    /// since the Unix epoch).
    fn list_keys(&self, prefix: &str) -> Result<Vec<(String, u64)>, Error>;
    /// How many chunks to store or fetch at once: the cores for a local store, more for
    /// one that waits on the network.
    fn parallelism(&self) -> usize {
        par::cores()
    }
}
