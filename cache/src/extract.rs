//! Writing a validated manifest into a directory, without ever leaving it.
//!
//! 1. Directories are created one component at a time; a component that is already a
//!    symlink on disk stops the restore ([`Error::SymlinkInPath`]), so nothing is ever
//!    written through a link, whoever put it there.
//! 2. A file whose size and chunk digests already match is left alone (only its mode
//!    and mtime are set); any other file is written to a temporary file in its
//!    directory and renamed over the old one (a rename replaces a link, it does not
//!    follow it).
//! 3. Symlinks come last, so none created here can redirect a later write.
//! 4. Directory modes are applied last, deepest first, always keeping the owner's
//!    `rwx` so the next restore can write there again.
//!
//! Chunks come from a [`ChunkSource`], so a registry store can reuse all of this.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::archive::{self, ChunkRef, Entry, EntryKind, Manifest};
use crate::error::Error;
use crate::fsutil::{system_time, unix_ns};
use crate::par::{self, par_map_on};

/// Where a restore gets chunk content from. Implementations return data already
/// checked with [`crate::archive::decompress`].
pub trait ChunkSource: Sync {
    fn chunk(&self, chunk: &ChunkRef) -> Result<Vec<u8>, Error>;
}

/// Counts of one extraction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractCounts {
    /// Files written from chunks.
    pub files_restored: u64,
    /// Files that already matched (size and chunk digests) and were left alone.
    pub files_unchanged: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Chunks read from the store.
    pub chunks_read: u64,
    /// Uncompressed bytes written.
    pub bytes_restored: u64,
}

impl ExtractCounts {
    /// Adds another extraction's counts to these.
    pub fn add(&mut self, other: &ExtractCounts) {
        self.files_restored += other.files_restored;
        self.files_unchanged += other.files_unchanged;
        self.dirs += other.dirs;
        self.symlinks += other.symlinks;
        self.chunks_read += other.chunks_read;
        self.bytes_restored += other.bytes_restored;
    }
}

/// Writes `manifest`, which must have passed [`Manifest::validate`], under `root`.
pub fn extract(
    manifest: &Manifest,
    root: &Path,
    source: &dyn ChunkSource,
) -> Result<ExtractCounts, Error> {
    extract_on(par::cores(), manifest, root, source)
}

/// [`extract`] with up to `threads` files written at once.
pub(crate) fn extract_on(
    threads: usize,
    manifest: &Manifest,
    root: &Path,
    source: &dyn ChunkSource,
) -> Result<ExtractCounts, Error> {
    fs::create_dir_all(root).map_err(write_err(root))?;
    let mut counts = ExtractCounts::default();
    let mut ready: HashSet<String> = HashSet::new();

    for entry in manifest.entries.iter().filter(|e| e.kind == EntryKind::Dir) {
        ensure_dir(root, &entry.path, &entry.path, &mut ready)?;
        counts.dirs += 1;
    }
    let files: Vec<&Entry> = manifest
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .collect();
    for entry in &files {
        ensure_parent(root, &entry.path, &mut ready)?;
    }
    let restored = par_map_on(threads, &files, |entry| restore_file(root, entry, source))?;
    for (written, chunks) in restored {
        match written {
            Some(bytes) => {
                counts.files_restored += 1;
                counts.bytes_restored += bytes;
                counts.chunks_read += chunks;
            }
            None => counts.files_unchanged += 1,
        }
    }
    for entry in manifest
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Symlink)
    {
        ensure_parent(root, &entry.path, &mut ready)?;
        restore_symlink(root, entry)?;
        counts.symlinks += 1;
    }
    for entry in manifest
        .entries
        .iter()
        .rev()
        .filter(|e| e.kind == EntryKind::Dir)
    {
        let path = root.join(&entry.path);
        set_mode(&path, (entry.mode & 0o777) | 0o700).map_err(write_err(&path))?;
    }
    Ok(counts)
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn ensure_parent(root: &Path, path: &str, ready: &mut HashSet<String>) -> Result<(), Error> {
    match path.rsplit_once('/') {
        Some((parent, _)) => ensure_dir(root, path, parent, ready),
        None => Ok(()),
    }
}

/// Makes `root/dir` a real directory, one component at a time, refusing symlinks.
/// `entry` names the manifest entry in errors.
fn ensure_dir(
    root: &Path,
    entry: &str,
    dir: &str,
    ready: &mut HashSet<String>,
) -> Result<(), Error> {
    if ready.contains(dir) {
        return Ok(());
    }
    // `dir` and its ancestors (`a/b/c`, `a/b`, `a`), walked from the top down.
    let mut prefixes: Vec<&str> =
        std::iter::successors(Some(dir), |d| d.rsplit_once('/').map(|(parent, _)| parent))
            .collect();
    prefixes.reverse();
    for prefix in prefixes {
        if ready.contains(prefix) {
            continue;
        }
        let current = root.join(prefix);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::SymlinkInPath {
                    path: entry.to_owned(),
                    symlink: prefix.to_owned(),
                });
            }
            Ok(_) => {
                // A file where the manifest has a directory: the manifest wins.
                fs::remove_file(&current).map_err(write_err(&current))?;
                fs::create_dir(&current).map_err(write_err(&current))?;
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&current).map_err(write_err(&current))?;
            }
            Err(err) => return Err(read_err(&current)(err)),
        }
        ready.insert(prefix.to_owned());
    }
    Ok(())
}

/// Returns `Some(bytes written)` and the chunk count, or `None` when the file on disk
/// already matched.
fn restore_file(
    root: &Path,
    entry: &Entry,
    source: &dyn ChunkSource,
) -> Result<(Option<u64>, u64), Error> {
    let path = root.join(&entry.path);
    let mode = entry.mode & 0o777;
    let mtime = entry.mtime_ns.map(system_time);
    match fs::symlink_metadata(&path) {
        // Restored earlier and untouched since: same size and mtime to the nanosecond.
        Ok(meta)
            if meta.is_file()
                && meta.len() == entry.size
                && entry.mtime_ns.is_some()
                && meta.modified().ok().map(unix_ns) == entry.mtime_ns
                && mode_matches(&meta, mode) =>
        {
            return Ok((None, 0));
        }
        Ok(meta) if meta.is_file() && meta.len() == entry.size => {
            let mut file = File::open(&path).map_err(read_err(&path))?;
            if same_content(&mut file, &entry.chunks).map_err(read_err(&path))? {
                set_file_attrs(&file, mode, mtime).map_err(write_err(&path))?;
                return Ok((None, 0));
            }
        }
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path).map_err(write_err(&path))?,
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(read_err(&path)(err)),
    }
    let parent = path.parent().unwrap_or(root);
    let mut tmp = tempfile::Builder::new()
        .prefix(".kiln-restore-")
        .tempfile_in(parent)
        .map_err(write_err(parent))?;
    for chunk in &entry.chunks {
        let data = source.chunk(chunk)?;
        tmp.write_all(&data).map_err(write_err(tmp.path()))?;
    }
    set_file_attrs(tmp.as_file(), mode, mtime).map_err(write_err(&path))?;
    tmp.persist(&path).map_err(|e| write_err(&path)(e.error))?;
    Ok((Some(entry.size), entry.chunks.len() as u64))
}

/// Compares a file with a chunk list by hashing it at the chunks' boundaries.
fn same_content(file: &mut File, chunks: &[ChunkRef]) -> std::io::Result<bool> {
    let mut buf = Vec::new();
    for chunk in chunks {
        buf.clear();
        let read = Read::by_ref(file).take(chunk.size).read_to_end(&mut buf)?;
        if read as u64 != chunk.size || archive::digest(&buf) != chunk.digest {
            return Ok(false);
        }
    }
    Ok(true)
}

fn restore_symlink(root: &Path, entry: &Entry) -> Result<(), Error> {
    let path = root.join(&entry.path);
    let target = entry.target.as_deref().unwrap_or_default();
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            if fs::read_link(&path).map_err(read_err(&path))? == Path::new(target) {
                return Ok(());
            }
            fs::remove_file(&path).map_err(write_err(&path))?;
        }
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path).map_err(write_err(&path))?,
        Ok(_) => fs::remove_file(&path).map_err(write_err(&path))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(read_err(&path)(err)),
    }
    symlink(target, &path).map_err(write_err(&path))
}

fn mode_matches(meta: &fs::Metadata, mode: u32) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o777 == mode
    }
    #[cfg(not(unix))]
    {
        let _ = (meta, mode);
        true
    }
}

fn set_file_attrs(file: &File, mode: u32, mtime: Option<SystemTime>) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    if let Some(mtime) = mtime {
        file.set_modified(mtime)?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

fn symlink(target: &str, path: &PathBuf) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, path)
    }
    #[cfg(not(unix))]
    {
        let _ = (target, path);
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "symlinks are restored on Unix only",
        ))
    }
}
