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
//! Every file is written to a temporary file in its directory and renamed into place,
//! so readers only ever see whole files. Chunks and manifests are immutable; a save
//! ends by renaming its ref, so of two concurrent saves of one key the last complete
//! one wins and neither can leave a partial manifest behind.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::archive::{self, ChunkRef, EntryKind, Manifest};
use crate::extract::{ChunkSource, ExtractCounts};
use crate::ops::{Root, Store};
use crate::{CacheKey, Error};

/// A manifest larger than this is refused before it is parsed.
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;

/// Which paths under the root a save takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Subpaths to save (files or directories); `None` saves the whole root. Missing
    /// subpaths are skipped.
    pub include: Option<Vec<PathBuf>>,
    /// Subpaths left out, with everything under them.
    pub exclude: Vec<PathBuf>,
}

impl Selection {
    /// The whole root.
    pub fn all() -> Selection {
        Selection::default()
    }

    fn excludes(&self, rel: &Path) -> bool {
        self.exclude.iter().any(|e| rel.starts_with(e))
    }
}

/// Limits of a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOptions {
    /// The files of a manifest may add up to at most this many bytes (default 16 GiB).
    pub max_total_bytes: u64,
}

impl Default for RestoreOptions {
    fn default() -> RestoreOptions {
        RestoreOptions {
            max_total_bytes: 16 << 30,
        }
    }
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveReport {
    pub key: String,
    /// `sha256:…` of the manifest written.
    pub manifest_digest: String,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Sockets, fifos, devices and symlinks pointing out of the root, found under the
    /// root and left out.
    pub skipped: u64,
    /// Uncompressed bytes of all files.
    pub bytes_total: u64,
    pub chunks_written: u64,
    pub chunks_reused: u64,
    /// Compressed bytes of the chunks written (manifest not included).
    pub bytes_written: u64,
    /// Nothing changed since the restore under the same key: nothing was written.
    pub unchanged: bool,
}

/// How a restore matched the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// The exact key was saved.
    Exact,
    /// The newest key sharing [`CacheKey::restore_prefix`] was restored.
    Partial,
    /// Nothing was restored.
    Miss,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub hit: Hit,
    /// The key restored, unless [`Hit::Miss`].
    pub restored_key: Option<String>,
    /// What the extraction wrote and left alone (all zero on a miss).
    pub counts: ExtractCounts,
    /// The manifest restored: pass it to the next save so unchanged files are not read
    /// again and an unchanged cache is not written.
    pub manifest: Option<Manifest>,
}

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
        crate::ops::save(self, key, &[Root::new("", root, selection.clone())], None)
    }

    /// Restores `key` into `root`, or else the newest key sharing its restore prefix.
    /// The manifest is validated in full before anything is written.
    pub fn restore(
        &self,
        key: &CacheKey,
        root: &Path,
        options: &RestoreOptions,
    ) -> Result<RestoreReport, Error> {
        crate::ops::restore(self, key, &[Root::new("", root, Selection::all())], options)
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
        write_atomic(&path, compressed, false)
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
            write_atomic(&path, compressed, false).map(|()| compressed.len() as u64)
        })
        .map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })??;
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
        write_atomic(&self.manifest_path(hex), &bytes, true)?;
        let saved = Ref {
            manifest: digest.clone(),
            saved_at_ns: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        let ref_bytes = serde_json::to_vec(&saved).expect("a ref serializes");
        write_atomic(&self.ref_path(&manifest.key), &ref_bytes, true)?;
        Ok(digest)
    }

    /// Where a chunk lives, for a well-formed digest.
    pub fn chunk_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = archive::digest_hex(digest)?;
        Some(
            self.dir
                .join("chunks")
                .join(&hex[..2])
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
        crate::par::cores() * 2
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

#[derive(Debug)]
pub(crate) struct Walked {
    pub(crate) rel: String,
    pub(crate) abs: PathBuf,
    pub(crate) kind: EntryKind,
    pub(crate) mode: u32,
    pub(crate) target: Option<String>,
    /// A file's size and mtime when walked.
    pub(crate) size: u64,
    pub(crate) mtime_ns: Option<i64>,
    /// `(device, inode)` of a file with several hard links: read once per save.
    pub(crate) inode: Option<(u64, u64)>,
}

/// Lists the selected entries under `root`, sorted by path (a directory before its
/// content); returns them and the count of special files left out.
pub(crate) fn walk(root: &Path, selection: &Selection) -> Result<(Vec<Walked>, u64), Error> {
    let mut out = Vec::new();
    let mut skipped = 0;
    match &selection.include {
        None => walk_dir(root, "", selection, &mut out, &mut skipped)?,
        Some(include) => {
            for sub in include {
                let rel = rel_string(sub)?;
                if rel.is_empty() {
                    walk_dir(root, "", selection, &mut out, &mut skipped)?;
                    continue;
                }
                let abs = root.join(&rel);
                match fs::symlink_metadata(&abs) {
                    Ok(meta) => {
                        if visit(abs, rel.clone(), &meta, selection, &mut out, &mut skipped)? {
                            walk_dir(root, &rel, selection, &mut out, &mut skipped)?;
                        }
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(Error::Read { path: abs, source }),
                }
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.dedup_by(|a, b| a.rel == b.rel);
    Ok((out, skipped))
}

/// `a/b` for a relative path of plain components.
fn rel_string(path: &Path) -> Result<String, Error> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::Normal(name) => parts.push(
                name.to_str()
                    .ok_or_else(|| Error::NonUtf8Path { path: path.into() })?,
            ),
            std::path::Component::CurDir => {}
            _ => {
                return Err(Error::InvalidPath {
                    path: path.display().to_string(),
                });
            }
        }
    }
    Ok(parts.join("/"))
}

fn walk_dir(
    root: &Path,
    rel_dir: &str,
    selection: &Selection,
    out: &mut Vec<Walked>,
    skipped: &mut u64,
) -> Result<(), Error> {
    let dir = root.join(rel_dir);
    let listing = fs::read_dir(&dir).map_err(|source| Error::Read {
        path: dir.clone(),
        source,
    })?;
    for item in listing {
        let item = item.map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        let abs = item.path();
        let name = item.file_name();
        let name = name
            .to_str()
            .ok_or_else(|| Error::NonUtf8Path { path: abs.clone() })?;
        let rel = if rel_dir.is_empty() {
            name.to_owned()
        } else {
            format!("{rel_dir}/{name}")
        };
        let meta = match fs::symlink_metadata(&abs) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Read { path: abs, source }),
        };
        if visit(abs, rel.clone(), &meta, selection, out, skipped)? {
            walk_dir(root, &rel, selection, out, skipped)?;
        }
    }
    Ok(())
}

/// Records one entry; true when it is a directory to descend into.
fn visit(
    abs: PathBuf,
    rel: String,
    meta: &fs::Metadata,
    selection: &Selection,
    out: &mut Vec<Walked>,
    skipped: &mut u64,
) -> Result<bool, Error> {
    if selection.excludes(Path::new(&rel)) {
        return Ok(false);
    }
    let file_type = meta.file_type();
    let (kind, target) = if file_type.is_dir() {
        (EntryKind::Dir, None)
    } else if file_type.is_file() {
        (EntryKind::File, None)
    } else if file_type.is_symlink() {
        let target = fs::read_link(&abs).map_err(|source| Error::Read {
            path: abs.clone(),
            source,
        })?;
        let target = target
            .to_str()
            .ok_or_else(|| Error::NonUtf8Path { path: abs.clone() })?
            .to_owned();
        // A link out of the root (absolute, or climbing out) would make the whole cache
        // unrestorable: it is left out, like a special file.
        if crate::archive::check_symlink(&rel, Some(&target)).is_err() {
            *skipped += 1;
            return Ok(false);
        }
        (EntryKind::Symlink, Some(target))
    } else {
        *skipped += 1;
        return Ok(false);
    };
    let descend = kind == EntryKind::Dir;
    let is_file = kind == EntryKind::File;
    out.push(Walked {
        rel,
        abs,
        kind,
        mode: mode_of(meta),
        target,
        size: if is_file { meta.len() } else { 0 },
        mtime_ns: if is_file {
            meta.modified().ok().map(unix_ns)
        } else {
            None
        },
        inode: if is_file { linked_inode(meta) } else { None },
    });
    Ok(descend)
}

fn linked_inode(meta: &fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.nlink() > 1).then(|| (meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        if meta.is_dir() || !meta.permissions().readonly() {
            0o755
        } else {
            0o555
        }
    }
}

pub(crate) fn unix_ns(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i64,
        Err(before) => -(before.duration().as_nanos() as i64),
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

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
fn write_atomic(path: &Path, bytes: &[u8], sync: bool) -> Result<(), Error> {
    let dir = path.parent().expect("store paths have a parent");
    let write_err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let temp = || tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir);
    // The directory usually exists: create it only when it does not (a save writes
    // thousands of chunks, and every `mkdir -p` is a few system calls).
    let mut tmp = match temp() {
        Ok(tmp) => tmp,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(write_err)?;
            temp().map_err(write_err)?
        }
        Err(err) => return Err(write_err(err)),
    };
    tmp.write_all(bytes).map_err(write_err)?;
    if sync {
        tmp.as_file().sync_all().map_err(write_err)?;
    }
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}
