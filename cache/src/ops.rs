//! Saving and restoring through any [`Store`]: the local directory here, an OCI registry
//! in kiln. This module owns the operations ([`save`], [`restore`], [`lookup`]), what
//! they take ([`Root`], [`RestoreOptions`]) and what they report ([`SaveReport`],
//! [`RestoreReport`], [`Hit`]).
//!
//! 1. A save walks one or more named [`Root`]s (cargo's home and a target directory are
//!    one cache), lists every entry under `NAME/…` in one [`Manifest`], and hands each
//!    chunk to the store, which writes only what it lacks.
//! 2. A file whose size and mtime equal its entry in the manifest the cache was restored
//!    from is not read again: its chunks are known, and the store has them. A save whose
//!    manifest equals the restored one under the same key writes nothing at all
//!    ([`SaveReport::unchanged`]).
//! 3. A restore reads the exact key's manifest, else the newest key sharing the restore
//!    prefix (one claiming to be saved in the future is ignored), validates it whole,
//!    then extracts each root's part into its directory: only the entries the root's
//!    [`Root::admit`] policy admits, so that a cache written by anyone else (another
//!    branch's pipeline, a fork) cannot bring back what a save would never have taken,
//!    such as `cargo-home/bin/cargo` or a `config.toml`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use crate::archive::{self, Chunking, Entry, EntryKind, MANIFEST_VERSION, Manifest};
use crate::error::Error;
use crate::extract::{ExtractCounts, extract_on};
use crate::fsutil::unix_ns;
use crate::key::CacheKey;
use crate::par::par_map_on;
use crate::store::Store;
use crate::walk::{Selection, Walked, walk};

/// Files up to this size are read whole before they are cut.
const WHOLE_FILE_MAX: u64 = 32 * 1024 * 1024;

/// One directory of a cache. Its entries are saved as `NAME/…`; an empty name saves them
/// at the manifest's top level (a single-directory cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub name: String,
    pub dir: PathBuf,
    /// What a save takes (it may depend on what is on disk, such as the `.crate` files
    /// of the packages a lockfile names).
    pub selection: Selection,
    /// What a restore brings back, whoever wrote the cache: a policy that does not depend
    /// on what is on disk (cargo's downloads, never its `bin/` or `config.toml`).
    pub admit: Selection,
}

impl Root {
    /// A root whose restore admits everything: for caches only this machine writes.
    pub fn new(name: impl Into<String>, dir: impl Into<PathBuf>, selection: Selection) -> Root {
        Root {
            name: name.into(),
            dir: dir.into(),
            selection,
            admit: Selection::all(),
        }
    }

    /// The same root, restoring only what `admit` admits.
    pub fn admitting(self, admit: Selection) -> Root {
        Root { admit, ..self }
    }
}

/// The most entries a restored manifest may hold by default: a large cargo target
/// directory has about a hundred thousand files.
pub const MAX_ENTRIES: usize = 1_000_000;

/// Limits of a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOptions {
    /// The files of a manifest may add up to at most this many bytes (default 16 GiB).
    pub max_total_bytes: u64,
    /// A manifest may hold at most this many entries (default [`MAX_ENTRIES`]).
    pub max_entries: usize,
}

impl Default for RestoreOptions {
    fn default() -> RestoreOptions {
        RestoreOptions {
            max_total_bytes: 16 << 30,
            max_entries: MAX_ENTRIES,
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
    /// Entries of the manifest that no root's selection admits (paths as saved): a save
    /// of these roots never takes them, so another writer put them there. Left out.
    pub refused: Vec<String>,
    /// The manifest restored: pass it to the next save so unchanged files are not read
    /// again and an unchanged cache is not written.
    pub manifest: Option<Manifest>,
}

/// Saves `roots` under `key`. `previous` is the manifest the cache was restored from,
/// if any: unchanged files are not read again, and an unchanged cache under the same key
/// is not written.
pub fn save(
    store: &dyn Store,
    key: &CacheKey,
    roots: &[Root],
    previous: Option<&Manifest>,
) -> Result<SaveReport, Error> {
    let key = key.to_string();
    let mut walked = Vec::new();
    let mut skipped = 0;
    for root in roots {
        if !root.dir.is_dir() {
            continue;
        }
        let (mut found, special) = walk(&root.dir, &root.selection)?;
        skipped += special;
        if !root.name.is_empty() {
            if found.is_empty() {
                continue;
            }
            for w in &mut found {
                w.rel = format!("{}/{}", root.name, w.rel);
            }
            walked.push(Walked {
                rel: root.name.clone(),
                abs: root.dir.clone(),
                kind: EntryKind::Dir,
                mode: 0o755,
                target: None,
                size: 0,
                mtime_ns: None,
                inode: None,
            });
        }
        walked.extend(found);
    }
    walked.sort_by(|a, b| a.rel.cmp(&b.rel));
    walked.dedup_by(|a, b| a.rel == b.rel);

    let known: HashMap<&str, &Entry> = previous
        .map(|m| m.entries.iter().map(|e| (e.path.as_str(), e)).collect())
        .unwrap_or_default();
    // Hard links to one file (cargo links uplifted artifacts) are read once: the others
    // take the first one's chunks, and are restored as copies. Entries are numbered in
    // walk order (by path), the manifest's order.
    let mut first_link: HashMap<(u64, u64), usize> = HashMap::new();
    let mut copies: Vec<(usize, &Walked, usize)> = Vec::new();
    let mut order: Vec<(usize, &Walked)> = Vec::with_capacity(walked.len());
    for (i, w) in walked.iter().enumerate() {
        match w.inode.map(|inode| *first_link.entry(inode).or_insert(i)) {
            Some(first) if first != i => copies.push((i, w, first)),
            _ => order.push((i, w)),
        }
    }
    // Largest files first, so no thread is left alone with a big one at the end.
    order.sort_by_key(|&(_, w)| std::cmp::Reverse(w.size));
    let in_order = par_map_on(store.parallelism(), &order, |&(_, w)| {
        store_entry(store, w, known.get(w.rel.as_str()).copied())
    })?;
    let mut stored: BTreeMap<usize, Option<(Entry, ChunkCounts)>> =
        order.iter().map(|&(i, _)| i).zip(in_order).collect();
    for (i, w, first) in copies {
        let copy = match stored.get(&first) {
            Some(Some((entry, _))) => Some((
                Entry {
                    path: w.rel.clone(),
                    mode: w.mode,
                    ..entry.clone()
                },
                ChunkCounts {
                    reused: entry.chunks.len() as u64,
                    ..ChunkCounts::default()
                },
            )),
            _ => None,
        };
        stored.insert(i, copy);
    }
    let stored = stored.into_values();

    let mut report = SaveReport {
        key: key.clone(),
        manifest_digest: String::new(),
        files: 0,
        dirs: 0,
        symlinks: 0,
        skipped,
        bytes_total: 0,
        chunks_written: 0,
        chunks_reused: 0,
        bytes_written: 0,
        unchanged: false,
    };
    let mut entries = Vec::with_capacity(walked.len());
    for (entry, counts) in stored.flatten() {
        match entry.kind {
            EntryKind::File => report.files += 1,
            EntryKind::Dir => report.dirs += 1,
            EntryKind::Symlink => report.symlinks += 1,
            EntryKind::Other(_) => {}
        }
        report.bytes_total += entry.size;
        report.chunks_written += counts.written;
        report.chunks_reused += counts.reused;
        report.bytes_written += counts.bytes_written;
        entries.push(entry);
    }
    if previous.is_some_and(|p| p.key == key && p.entries == entries) {
        report.unchanged = true;
        return Ok(report);
    }
    let manifest = Manifest {
        schema_version: MANIFEST_VERSION,
        key,
        chunking: Chunking::current(),
        compression: "zstd".into(),
        entries,
    };
    report.manifest_digest = store.put_manifest(&manifest)?;
    Ok(report)
}

/// Restores `key` into `roots`, or else the newest key sharing its restore prefix. The
/// manifest is validated in full before anything is written; entries of roots not named
/// here are left alone.
pub fn restore(
    store: &dyn Store,
    key: &CacheKey,
    roots: &[Root],
    options: &RestoreOptions,
) -> Result<RestoreReport, Error> {
    let Some((hit, manifest)) = lookup(store, key)? else {
        return Ok(RestoreReport {
            hit: Hit::Miss,
            restored_key: None,
            counts: ExtractCounts::default(),
            refused: Vec::new(),
            manifest: None,
        });
    };
    if manifest.entries.len() > options.max_entries {
        return Err(Error::TooManyEntries {
            count: manifest.entries.len(),
            limit: options.max_entries,
        });
    }
    manifest.validate(options.max_total_bytes)?;
    let mut counts = ExtractCounts::default();
    let mut refused = Vec::new();
    for root in roots {
        let prefix = format!("{}/", root.name);
        let mut entries = Vec::new();
        for entry in &manifest.entries {
            let rel = if root.name.is_empty() {
                entry.path.as_str()
            } else {
                match entry.path.strip_prefix(&prefix) {
                    Some(rel) => rel,
                    None => continue,
                }
            };
            if root
                .admit
                .admits(std::path::Path::new(rel), entry.kind == EntryKind::Dir)
            {
                entries.push(Entry {
                    path: rel.to_owned(),
                    ..entry.clone()
                });
            } else {
                refused.push(entry.path.clone());
            }
        }
        if entries.is_empty() {
            continue;
        }
        let part = Manifest {
            entries,
            ..manifest.clone()
        };
        counts.add(&extract_on(store.parallelism(), &part, &root.dir, store)?);
    }
    Ok(RestoreReport {
        hit,
        restored_key: Some(manifest.key.clone()),
        counts,
        refused,
        manifest: Some(manifest),
    })
}

/// The exact key's manifest, else the newest readable one sharing the restore prefix,
/// without restoring it (a save in another process uses it as its `previous`). Each is
/// looked for in the key's own scope first, then in the scopes it trusts
/// ([`CacheKey::read_order`]); nothing outside them is ever read.
pub fn lookup(store: &dyn Store, key: &CacheKey) -> Result<Option<(Hit, Manifest)>, Error> {
    let scopes = key.read_order();
    for (exact, _) in &scopes {
        if let Some(manifest) = store.get_manifest(exact)? {
            return Ok(Some((Hit::Exact, checked(exact, manifest)?)));
        }
    }
    // The time is the writer's claim: one from the future would win every partial hit.
    let latest = now_ns().saturating_add(CLOCK_SKEW_NS);
    let mut first_err = None;
    for (exact, prefix) in &scopes {
        let mut candidates = store.list_keys(&format!("{prefix}-"))?;
        candidates.retain(|(name, at)| name != exact && *at <= latest);
        candidates.sort_by(|(a, at), (b, bt)| (bt, b).cmp(&(at, a)));
        for (name, _) in candidates {
            // A damaged candidate should not hide an older good one.
            match store.get_manifest(&name).and_then(|m| match m {
                Some(m) => checked(&name, m).map(Some),
                None => Ok(None),
            }) {
                Ok(Some(manifest)) => return Ok(Some((Hit::Partial, manifest))),
                Ok(None) => {}
                Err(err) if err.is_corrupt_cache() => {
                    first_err.get_or_insert(err);
                }
                Err(err) => return Err(err),
            }
        }
    }
    match first_err {
        Some(err) => Err(err),
        None => Ok(None),
    }
}

/// How far ahead of this clock a cache's save time may be and still count.
const CLOCK_SKEW_NS: u64 = 10 * 60 * 1_000_000_000;

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A manifest must name the key it was found under (a store cannot swap caches).
fn checked(key: &str, manifest: Manifest) -> Result<Manifest, Error> {
    if manifest.key != key {
        return Err(Error::ManifestKey {
            key: key.to_owned(),
            found: manifest.key,
        });
    }
    Ok(manifest)
}

#[derive(Debug, Default)]
struct ChunkCounts {
    written: u64,
    reused: u64,
    bytes_written: u64,
}

fn store_entry(
    store: &dyn Store,
    walked: &Walked,
    known: Option<&Entry>,
) -> Result<Option<(Entry, ChunkCounts)>, Error> {
    let mut entry = Entry {
        path: walked.rel.clone(),
        kind: walked.kind.clone(),
        mode: walked.mode,
        size: 0,
        mtime_ns: None,
        target: walked.target.clone(),
        chunks: Vec::new(),
    };
    let mut counts = ChunkCounts::default();
    if walked.kind != EntryKind::File {
        return Ok(Some((entry, counts)));
    }
    // Unchanged since the restore (same size and mtime to the nanosecond): its chunks
    // are in the store already.
    if let Some(known) = known
        && known.kind == EntryKind::File
        && known.size == walked.size
        && known.mtime_ns.is_some()
        && known.mtime_ns == walked.mtime_ns
    {
        counts.reused = known.chunks.len() as u64;
        entry.size = known.size;
        entry.mtime_ns = known.mtime_ns;
        entry.chunks = known.chunks.clone();
        return Ok(Some((entry, counts)));
    }
    let file = match File::open(&walked.abs) {
        Ok(file) => file,
        // Deleted since the walk (a build still running): not worth failing a save.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Read {
                path: walked.abs.clone(),
                source,
            });
        }
    };
    let meta = file.metadata().ok();
    entry.mtime_ns = meta.as_ref().and_then(|m| m.modified().ok()).map(unix_ns);
    let read_err = |source| Error::Read {
        path: walked.abs.clone(),
        source,
    };
    let mut store_piece = |data: &[u8]| -> Result<(), Error> {
        let (chunk, written) = store.put_chunk(data)?;
        match written {
            Some(bytes) => {
                counts.written += 1;
                counts.bytes_written += bytes;
            }
            None => counts.reused += 1,
        }
        entry.size += chunk.size;
        entry.chunks.push(chunk);
        Ok(())
    };
    // Most cached files are small: read them whole and cut the slice, rather than have
    // the streaming chunker allocate and zero a `CHUNK_MAX` buffer per file.
    if meta.is_some_and(|m| m.len() <= WHOLE_FILE_MAX) {
        // One buffer per thread, reused from file to file.
        thread_local! {
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUFFER.with(|cell| -> Result<(), Error> {
            let mut data = cell.borrow_mut();
            data.clear();
            (&file).read_to_end(&mut data).map_err(read_err)?;
            for cut in archive::slice_chunker(&data) {
                let piece = data
                    .get(cut.offset..)
                    .and_then(|rest| rest.get(..cut.length))
                    .ok_or_else(|| {
                        read_err(std::io::Error::other(format!(
                            "the chunker cut {} bytes at offset {} of a {}-byte file",
                            cut.length,
                            cut.offset,
                            data.len()
                        )))
                    })?;
                store_piece(piece)?;
            }
            // Keep a big file's buffer no longer than its file (eight threads of them
            // would blow the memory budget).
            if data.capacity() > 8 << 20 {
                *data = Vec::new();
            }
            Ok(())
        })?;
    } else {
        for piece in archive::chunker(file) {
            let piece = piece.map_err(|err| read_err(err.into()))?;
            store_piece(&piece.data)?;
        }
    }
    Ok(Some((entry, counts)))
}
