//! The archive format: a JSON manifest plus content-addressed, zstd-compressed chunks.
//!
//! 1. Saving walks a directory and lists every entry (relative `/`-separated path,
//!    kind, mode, size, mtime) in a [`Manifest`].
//! 2. Each file's content is cut with FastCDC (2020, 256 KiB / 1 MiB / 4 MiB): cut
//!    points follow the content, so an insertion changes the chunks around it and no
//!    others.
//! 3. A chunk is named by the sha256 of its *uncompressed* bytes and stored zstd
//!    compressed. Identical content (the same `.crate` in two caches, two copies of a
//!    file) is one chunk.
//! 4. Small files are not packed together: a file smaller than a chunk is one chunk of
//!    its own. A directory store does not mind; a registry store that wants fewer
//!    blobs can bundle chunks at upload time without a new manifest version.
//!
//! Reading a manifest back ([`Manifest::validate`]) refuses everything that could write
//! outside the restore root or exhaust the disk; see [`crate::Error`].
//!
//! Everything here reads untrusted bytes (a cache from a registry anyone may have pushed
//! to), so nothing indexes or slices: a bad manifest or chunk is an error, never a panic
//! (`fuzz/`'s `cache_manifest` and `cache_chunk` targets check it).
#![deny(clippy::indexing_slicing, clippy::string_slice)]

use std::collections::HashMap;
use std::io::Read;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::format::{CHUNK_AVG, CHUNK_MAX, CHUNK_MIN, MANIFEST_VERSION, ZSTD_LEVEL};

use crate::error::Error;

/// The list of everything one saved cache holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub schema_version: u32,
    /// The cache key it was saved under.
    pub key: String,
    /// How file content was cut, so a reader can tell the chunks are comparable.
    pub chunking: Chunking,
    /// Always `zstd` in version 1.
    pub compression: String,
    /// Sorted by path; a directory comes before what it holds.
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunking {
    /// `fastcdc-2020`.
    pub algorithm: String,
    pub min: u64,
    pub avg: u64,
    pub max: u64,
}

impl Chunking {
    pub fn current() -> Chunking {
        Chunking {
            algorithm: "fastcdc-2020".into(),
            min: CHUNK_MIN as u64,
            avg: CHUNK_AVG as u64,
            max: CHUNK_MAX as u64,
        }
    }
}

/// One file, directory or symlink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative to the saved root, `/`-separated, no `.`/`..` components.
    pub path: String,
    pub kind: EntryKind,
    /// Unix permission bits (`0o777` at most are restored; no setuid/setgid/sticky).
    pub mode: u32,
    /// File size in bytes; 0 for directories and symlinks.
    #[serde(default)]
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch (cargo's fingerprints
    /// compare mtimes, so files get theirs back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
    /// A symlink's target, as stored on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A file's chunks, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<ChunkRef>,
}

/// An entry's kind. Version 1 writes only `file`, `dir` and `symlink`; anything else
/// (`hardlink`, `fifo`, `char-device`, ...) is kept as read, to be refused by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other(String),
}

impl From<String> for EntryKind {
    fn from(s: String) -> EntryKind {
        match s.as_str() {
            "file" => EntryKind::File,
            "dir" => EntryKind::Dir,
            "symlink" => EntryKind::Symlink,
            _ => EntryKind::Other(s),
        }
    }
}

impl From<EntryKind> for String {
    fn from(kind: EntryKind) -> String {
        match kind {
            EntryKind::File => "file".into(),
            EntryKind::Dir => "dir".into(),
            EntryKind::Symlink => "symlink".into(),
            EntryKind::Other(s) => s,
        }
    }
}

/// A reference to one chunk of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// `sha256:<64 lowercase hex>` of the uncompressed bytes.
    pub digest: String,
    /// Uncompressed size.
    pub size: u64,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a well-formed `sha256:` digest (the only form used in store paths).
pub fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    // oci-spec's rule, which kiln follows everywhere: 64 lowercase hex digits.
    hex.parse::<oci_spec::image::Sha256Digest>().ok()?;
    Some(hex)
}

/// Cuts `reader`'s content into chunks.
pub fn chunker<R: Read>(reader: R) -> fastcdc::v2020::StreamCDC<R> {
    fastcdc::v2020::StreamCDC::new(reader, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX)
}

/// Cuts an in-memory buffer into chunks, at the same points as [`chunker`].
pub fn slice_chunker(data: &[u8]) -> fastcdc::v2020::FastCDC<'_> {
    fastcdc::v2020::FastCDC::new(data, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX)
}

/// zstd-compresses one chunk.
pub fn compress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    with_compressed(data, <[u8]>::to_vec)
}

/// zstd-compresses one chunk into this thread's reused buffer and hands it to `f`: a
/// save compresses thousands of chunks, and a fresh megabyte per chunk costs more in page
/// faults than the compression itself.
pub fn with_compressed<R>(data: &[u8], f: impl FnOnce(&[u8]) -> R) -> std::io::Result<R> {
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<(zstd::bulk::Compressor<'static>, Vec<u8>)>> =
            const { std::cell::RefCell::new(None) };
    }
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (compressor, buffer) = match &mut *slot {
            Some(state) => state,
            None => slot.insert((zstd::bulk::Compressor::new(ZSTD_LEVEL)?, Vec::new())),
        };
        buffer.clear();
        buffer.reserve(zstd::zstd_safe::compress_bound(data.len()));
        compressor.compress_to_buffer(data, buffer)?;
        Ok(f(buffer))
    })
}

/// Decompresses one stored chunk and checks it against its reference: never more than
/// `chunk.size` bytes are inflated (a decompression bomb stops there), then the size
/// and the digest must match.
pub fn decompress(stored: impl Read, chunk: &ChunkRef) -> Result<Vec<u8>, Error> {
    let decode_err = |source| Error::ChunkDecode {
        digest: chunk.digest.clone(),
        source,
    };
    let decoder = zstd::stream::read::Decoder::new(stored).map_err(decode_err)?;
    let mut out = Vec::with_capacity(chunk.size.min(CHUNK_MAX as u64) as usize);
    decoder
        // Saturating: a manifest may declare any size, and `u64::MAX + 1` would panic.
        .take(chunk.size.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(decode_err)?;
    let actual = out.len() as u64;
    if actual > chunk.size {
        return Err(Error::ChunkTooLarge {
            digest: chunk.digest.clone(),
            declared: chunk.size,
        });
    }
    if actual < chunk.size {
        return Err(Error::ChunkTruncated {
            digest: chunk.digest.clone(),
            declared: chunk.size,
            actual,
        });
    }
    let got = digest(&out);
    if got != chunk.digest {
        return Err(Error::ChunkDigest {
            digest: chunk.digest.clone(),
            actual: got,
        });
    }
    Ok(out)
}

impl Manifest {
    /// Parses a manifest, telling a newer version from a damaged file.
    pub fn from_slice(key: &str, bytes: &[u8]) -> Result<Manifest, Error> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let parse_err = |source| Error::ManifestParse {
            key: key.to_owned(),
            source,
        };
        let version: Version = serde_json::from_slice(bytes).map_err(parse_err)?;
        if version.schema_version != MANIFEST_VERSION {
            return Err(Error::ManifestVersion {
                key: key.to_owned(),
                version: version.schema_version,
            });
        }
        serde_json::from_slice(bytes).map_err(parse_err)
    }

    /// Sum of the file sizes.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// Checks everything a restore relies on, before anything is written:
    ///
    /// - paths are relative, `/`-separated, with no empty, `.` or `..` component and no
    ///   backslash or NUL, and each appears once;
    /// - kinds are `file`, `dir` or `symlink` (no hardlinks, devices, fifos);
    /// - no entry lies under a symlink entry or under a file entry;
    /// - a symlink's target is relative, may start with `..` components but has none
    ///   after a name, and stays inside the root when resolved from the link's
    ///   directory (so a chain of links cannot climb out either);
    /// - chunk digests are well-formed, a file's chunks add up to its size, no chunk
    ///   is larger than [`CHUNK_MAX`], and the files add up to at most `max_total`.
    pub fn validate(&self, max_total: u64) -> Result<(), Error> {
        let mut kinds: HashMap<&str, &EntryKind> = HashMap::with_capacity(self.entries.len());
        for entry in &self.entries {
            check_path(&entry.path)?;
            if kinds.insert(&entry.path, &entry.kind).is_some() {
                return Err(Error::DuplicateEntry {
                    path: entry.path.clone(),
                });
            }
        }
        let mut total: u64 = 0;
        for entry in &self.entries {
            // Every proper prefix must be a directory (listed or not), never a link or file.
            let prefixes = entry
                .path
                .match_indices('/')
                .map(|(i, _)| entry.path.get(..i));
            for prefix in prefixes {
                let prefix = prefix.unwrap_or_default();
                match kinds.get(prefix) {
                    None | Some(EntryKind::Dir) => {}
                    Some(EntryKind::Symlink) => {
                        return Err(Error::SymlinkInPath {
                            path: entry.path.clone(),
                            symlink: prefix.to_owned(),
                        });
                    }
                    Some(_) => {
                        return Err(Error::InvalidPath {
                            path: entry.path.clone(),
                        });
                    }
                }
            }
            match &entry.kind {
                EntryKind::File => {
                    let mut sum: u64 = 0;
                    for chunk in &entry.chunks {
                        if digest_hex(&chunk.digest).is_none() {
                            return Err(Error::InvalidDigest {
                                digest: chunk.digest.clone(),
                            });
                        }
                        if chunk.size > CHUNK_MAX as u64 {
                            return Err(Error::ChunkTooLarge {
                                digest: chunk.digest.clone(),
                                declared: CHUNK_MAX as u64,
                            });
                        }
                        sum += chunk.size;
                    }
                    if sum != entry.size {
                        return Err(Error::SizeMismatch {
                            path: entry.path.clone(),
                            declared: entry.size,
                            chunks: sum,
                        });
                    }
                    total = total.saturating_add(entry.size);
                }
                EntryKind::Dir => {}
                EntryKind::Symlink => check_symlink(&entry.path, entry.target.as_deref())?,
                EntryKind::Other(kind) => {
                    return Err(Error::UnsupportedEntry {
                        path: entry.path.clone(),
                        kind: kind.clone(),
                    });
                }
            }
        }
        if total > max_total {
            return Err(Error::TooLarge {
                total,
                limit: max_total,
            });
        }
        Ok(())
    }
}

fn check_path(path: &str) -> Result<(), Error> {
    let invalid = || Error::InvalidPath { path: path.into() };
    if path.starts_with('/') {
        return Err(Error::AbsolutePath { path: path.into() });
    }
    if path.is_empty() || path.contains(['\\', '\0']) {
        return Err(invalid());
    }
    #[cfg(windows)]
    if path.contains(':') {
        return Err(Error::AbsolutePath { path: path.into() });
    }
    for component in path.split('/') {
        match component {
            ".." => return Err(Error::ParentComponent { path: path.into() }),
            "" | "." => return Err(invalid()),
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn check_symlink(path: &str, target: Option<&str>) -> Result<(), Error> {
    let escapes = || Error::SymlinkEscapes {
        path: path.into(),
        target: target.unwrap_or_default().into(),
    };
    let target = target.ok_or_else(escapes)?;
    if target.is_empty() || target.starts_with('/') || target.contains(['\\', '\0']) {
        return Err(escapes());
    }
    // The link's directory is `depth` levels below the root.
    let mut depth = path.matches('/').count();
    let mut named = false;
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." if named => return Err(escapes()),
            ".." => depth = depth.checked_sub(1).ok_or_else(escapes)?,
            _ => named = true,
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn link(path: &str, target: &str) -> Result<(), Error> {
        check_symlink(path, Some(target))
    }

    #[test]
    fn symlink_targets_stay_inside() {
        assert!(link("a", "b").is_ok());
        assert!(link("d/a", "../b/c").is_ok());
        assert!(link("d/e/a", "../../b").is_ok());
        assert!(matches!(
            link("a", "../b"),
            Err(Error::SymlinkEscapes { .. })
        ));
        assert!(matches!(
            link("d/a", "../../b"),
            Err(Error::SymlinkEscapes { .. })
        ));
        assert!(matches!(
            link("a", "/etc"),
            Err(Error::SymlinkEscapes { .. })
        ));
        // `d/up -> ..` is inside, but `d/up/..` from the root really is the root's parent.
        assert!(matches!(
            link("s", "d/up/.."),
            Err(Error::SymlinkEscapes { .. })
        ));
    }

    #[test]
    fn paths_are_plain_relative() {
        assert!(check_path("a/b.txt").is_ok());
        assert!(matches!(check_path("/a"), Err(Error::AbsolutePath { .. })));
        assert!(matches!(
            check_path("a/../b"),
            Err(Error::ParentComponent { .. })
        ));
        for bad in ["", "a//b", "./a", "a/", "a\\b"] {
            assert!(
                matches!(check_path(bad), Err(Error::InvalidPath { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn slice_and_stream_cut_alike() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let data: Vec<u8> = (0..6 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let sliced: Vec<_> = slice_chunker(&data)
            .map(|c| (c.offset as u64, c.length))
            .collect();
        let streamed: Vec<_> = chunker(&data[..])
            .map(|c| c.unwrap())
            .map(|c| (c.offset, c.length))
            .collect();
        assert!(sliced.len() > 2, "{sliced:?}");
        assert_eq!(sliced, streamed);
    }

    /// Found by `fuzz/`'s `cache_chunk` target: a declared size of `u64::MAX` made the
    /// read limit (`size + 1`) overflow.
    #[test]
    fn any_declared_size_is_an_error_not_a_panic() {
        let stored = compress(b"kiln").unwrap();
        for size in [u64::MAX, u64::MAX - 1, 0] {
            let chunk = ChunkRef {
                digest: digest(b"kiln"),
                size,
            };
            assert!(
                matches!(
                    decompress(&stored[..], &chunk),
                    Err(Error::ChunkTruncated { actual: 4, .. } | Error::ChunkTooLarge { .. })
                ),
                "{size}"
            );
        }
    }

    #[test]
    fn bomb_stops_at_the_declared_size() {
        let data = vec![0u8; 1 << 20];
        let stored = compress(&data).unwrap();
        let chunk = ChunkRef {
            digest: digest(&data),
            size: 1000,
        };
        assert!(matches!(
            decompress(&stored[..], &chunk),
            Err(Error::ChunkTooLarge { declared: 1000, .. })
        ));
        let ok = ChunkRef {
            digest: digest(&data),
            size: data.len() as u64,
        };
        assert_eq!(decompress(&stored[..], &ok).unwrap(), data);
    }
}
