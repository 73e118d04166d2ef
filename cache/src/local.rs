//! A cache store in a local directory (a runner's persistent disk, a mounted volume, or
//! the directory a CI system's own cache action saves).
//!
//! Layout, shaped like an OCI registry so a registry store can mirror it:
//!
//! ```text
//! <dir>/chunks/<2 hex>/<64 hex>.zst   a chunk, named by the sha256 of its uncompressed bytes
//! <dir>/manifests/<64 hex>.json       a manifest, named by the sha256 of the file itself
//! <dir>/refs/<cache key>.json         {"manifest": "sha256:…", "saved_at_ns": …}
//! ```
//!
//! Every file is written to a temporary file in its directory and renamed into place
//! ([`crate::fsutil`]), so readers only ever see whole files; manifests and refs are
//! synced to disk, chunks are checked by digest when read instead. Chunks and manifests
//! are immutable; a save ends by renaming its ref, so of two concurrent saves of one key
//! the last complete one wins and neither can leave a partial manifest behind.
//!
//! [`LocalStore::save`] and [`LocalStore::restore`] are shortcuts for a cache of one
//! directory, on top of [`crate::save`] and [`crate::restore`].

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::archive::{self, ChunkRef, Manifest};
use crate::error::Error;
use crate::extract::ChunkSource;
use crate::fsutil::{write_atomic, write_atomic_unsynced};
use crate::key::CacheKey;
use crate::ops::{self, RestoreOptions, RestoreReport, Root, SaveReport};
use crate::par;
use crate::store::{MAX_MANIFEST_BYTES, Store};
use crate::walk::Selection;

#[derive(Debug, Serialize, Deserialize)]
struct Ref {
    manifest: String,
    saved_at_ns: u64,
}

/// A cache store in a local directory; see the module docs for the layout.
#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    /// A store in `dir`, created on first save.
    pub fn new(dir: impl Into<PathBuf>) -> LocalStore {
        LocalStore { dir: dir.into() }
    }

    /// Saves the selected part of `root` under `key`: chunks the store lacks, then the
    /// manifest, then the key's ref.
    pub fn save(
        &self,
        key: &CacheKey,
        root: &Path,
        selection: &Selection,
    ) -> Result<SaveReport, Error> {
        ops::save(self, key, &[Root::new("", root, selection.clone())], None)
    }

    /// Restores `key` into `root`, or else the newest key sharing its restore prefix.
    /// The manifest is validated in full before anything is written.
    pub fn restore(
        &self,
        key: &CacheKey,
        root: &Path,
        options: &RestoreOptions,
    ) -> Result<RestoreReport, Error> {
        ops::restore(self, key, &[Root::new("", root, Selection::all())], options)
    }

    /// Keeps an already compressed chunk (downloaded from another store) unless present;
    /// `data` must have been checked against `digest` by decompressing it.
    pub fn put_stored_chunk(&self, digest: &str, compressed: &[u8]) -> Result<(), Error> {
        let path = self
            .chunk_path(digest)
            .ok_or_else(|| Error::InvalidDigest {
                digest: digest.to_owned(),
            })?;
        if path.is_file() {
            return Ok(());
        }
        write_atomic_unsynced(&path, compressed).map_err(|source| Error::Write { path, source })
    }

    /// Stores one chunk unless present; returns its reference and whether it was written
    /// (with the compressed size).
    pub fn put_chunk(&self, data: &[u8]) -> Result<(ChunkRef, Option<u64>), Error> {
        let chunk = ChunkRef {
            digest: archive::digest(data),
            size: data.len() as u64,
        };
        let path = self
            .chunk_path(&chunk.digest)
            .expect("digest() is well-formed");
        if path.is_file() {
            return Ok((chunk, None));
        }
        let written = archive::with_compressed(data, |compressed| {
            write_atomic_unsynced(&path, compressed).map(|()| compressed.len() as u64)
        })
        .and_then(|written| written)
        .map_err(|source| Error::Write { path, source })?;
        Ok((chunk, Some(written)))
    }

    /// Writes a manifest and points its key's ref at it; returns the manifest's digest.
    pub fn put_manifest(&self, manifest: &Manifest) -> Result<String, Error> {
        if !is_key_name(&manifest.key) {
            return Err(Error::InvalidPath {
                path: manifest.key.clone(),
            });
        }
        let bytes = serde_json::to_vec(manifest).expect("a manifest serializes");
        let digest = archive::digest(&bytes);
        let hex = archive::digest_hex(&digest).expect("digest() is well-formed");
        let path = self.manifest_path(hex);
        write_atomic(&path, &bytes).map_err(|source| Error::Write { path, source })?;
        let saved = Ref {
            manifest: digest.clone(),
            saved_at_ns: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        let ref_bytes = serde_json::to_vec(&saved).expect("a ref serializes");
        let path = self.ref_path(&manifest.key);
        write_atomic(&path, &ref_bytes).map_err(|source| Error::Write { path, source })?;
        Ok(digest)
    }

    /// Where a chunk lives, for a well-formed digest.
    pub fn chunk_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = archive::digest_hex(digest)?;
        Some(
            self.dir
                .join("chunks")
                .join(hex.get(..2)?)
                .join(format!("{hex}.zst")),
        )
    }

    fn manifest_path(&self, hex: &str) -> PathBuf {
        self.dir.join("manifests").join(format!("{hex}.json"))
    }

    fn ref_path(&self, key: &str) -> PathBuf {
        self.dir.join("refs").join(format!("{key}.json"))
    }

    fn read_ref(&self, key: &str) -> Result<Option<Ref>, Error> {
        let path = self.ref_path(key);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| Error::RefCorrupt {
                        key: key.to_owned(),
                        source,
                    })
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Read { path, source }),
        }
    }

    /// The keys starting with `prefix` and when each was saved; unreadable refs are
    /// skipped (another candidate may be fine).
    fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<(String, u64)>, Error> {
        let dir = self.dir.join("refs");
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(Error::Read { path: dir, source }),
        };
        let mut found = Vec::new();
        for item in listing {
            let item = item.map_err(|source| Error::Read {
                path: dir.clone(),
                source,
            })?;
            let name = item.file_name();
            let Some(key) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if !key.starts_with(prefix) || !is_key_name(key) {
                continue;
            }
            if let Ok(Some(r)) = self.read_ref(key) {
                found.push((key.to_owned(), r.saved_at_ns));
            }
        }
        Ok(found)
    }

    fn read_manifest(&self, key: &str, digest: &str) -> Result<Manifest, Error> {
        let corrupt = |actual: String| Error::ManifestDigest {
            key: key.to_owned(),
            expected: digest.to_owned(),
            actual,
        };
        let hex = archive::digest_hex(digest).ok_or_else(|| corrupt(String::new()))?;
        let path = self.manifest_path(hex);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::ManifestMissing {
                    key: key.to_owned(),
                });
            }
            Err(source) => return Err(Error::Read { path, source }),
        };
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::TooLarge {
                total: bytes.len() as u64,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let actual = archive::digest(&bytes);
        if actual != digest {
            return Err(corrupt(actual));
        }
        Manifest::from_slice(key, &bytes)
    }
}

impl Store for LocalStore {
    fn put_chunk(&self, data: &[u8]) -> Result<(ChunkRef, Option<u64>), Error> {
        LocalStore::put_chunk(self, data)
    }

    fn get_manifest(&self, key: &str) -> Result<Option<Manifest>, Error> {
        if !is_key_name(key) {
            return Ok(None);
        }
        match self.read_ref(key)? {
            Some(found) => self.read_manifest(key, &found.manifest).map(Some),
            None => Ok(None),
        }
    }

    fn put_manifest(&self, manifest: &Manifest) -> Result<String, Error> {
        LocalStore::put_manifest(self, manifest)
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<(String, u64)>, Error> {
        self.keys_with_prefix(prefix)
    }

    fn parallelism(&self) -> usize {
        // Creating a file per chunk waits on the filesystem as much as on the cores.
        par::cores() * 2
    }
}

impl ChunkSource for LocalStore {
    fn chunk(&self, chunk: &ChunkRef) -> Result<Vec<u8>, Error> {
        let path = self
            .chunk_path(&chunk.digest)
            .ok_or_else(|| Error::InvalidDigest {
                digest: chunk.digest.clone(),
            })?;
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::ChunkMissing {
                    digest: chunk.digest.clone(),
                });
            }
            Err(source) => return Err(Error::Read { path, source }),
        };
        let data = archive::decompress(file, chunk);
        if let Err(err) = &data
            && err.is_corrupt_cache()
        {
            // A damaged chunk would otherwise be "reused" by every later save.
            let _ = fs::remove_file(&path);
        }
        data
    }
}

/// Keys name files: `[A-Za-z0-9_.-]`, not starting with a dot.
fn is_key_name(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}
