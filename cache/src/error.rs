//! The errors of the archive format and the stores.

use std::path::PathBuf;

/// What went wrong while saving or restoring a cache.
///
/// [`Error::is_corrupt_cache`] tells the errors that mean "this saved cache cannot be
/// trusted" (the caller warns and builds cold) from local I/O failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("Failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Path `{}` cannot be cached: it is not valid UTF-8", path.display())]
    NonUtf8Path { path: PathBuf },
    /// A remote store failed (unreachable, refused, timed out).
    #[error("Failed to {what}")]
    Store {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    // The saved cache is damaged: the caller goes on cold.
    #[error("Reference of cache key `{key}` is corrupt")]
    RefCorrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("Manifest of cache key `{key}` is corrupt: its digest is `{actual}`, not `{expected}`")]
    ManifestDigest {
        key: String,
        expected: String,
        actual: String,
    },
    #[error("Manifest of cache key `{key}` is missing from the store")]
    ManifestMissing { key: String },
    #[error("Manifest found under cache key `{key}` is for key `{found}`")]
    ManifestKey { key: String, found: String },
    #[error("Failed to parse the manifest of cache key `{key}`")]
    ManifestParse {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "Manifest of cache key `{key}` has version {version}; this kiln reads version {}",
        crate::format::MANIFEST_VERSION
    )]
    ManifestVersion { key: String, version: u32 },
    #[error("Manifest entry `{path}` declares {declared} bytes but its chunks add up to {chunks}")]
    SizeMismatch {
        path: String,
        declared: u64,
        chunks: u64,
    },
    #[error("Chunk digest `{digest}` is not of the form `sha256:<64 hex digits>`")]
    InvalidDigest { digest: String },
    #[error("Chunk `{digest}` is missing from the store")]
    ChunkMissing { digest: String },
    #[error("Failed to decompress chunk `{digest}`")]
    ChunkDecode {
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Chunk `{digest}` is corrupt: its content hashes to `{actual}`")]
    ChunkDigest { digest: String, actual: String },
    #[error(
        "Chunk `{digest}` decompresses to more than the {declared} bytes the manifest declares"
    )]
    ChunkTooLarge { digest: String, declared: u64 },
    #[error(
        "Chunk `{digest}` decompresses to {actual} bytes, not the {declared} the manifest declares"
    )]
    ChunkTruncated {
        digest: String,
        declared: u64,
        actual: u64,
    },
    #[error("Cache holds {total} bytes, more than the limit of {limit}")]
    TooLarge { total: u64, limit: u64 },
    #[error("Cache holds {count} entries, more than the limit of {limit}")]
    TooManyEntries { count: usize, limit: usize },

    // The manifest tries to write outside the restore root.
    #[error("Manifest entry `{path}` is an absolute path")]
    AbsolutePath { path: String },
    #[error("Manifest entry `{path}` has a `..` component")]
    ParentComponent { path: String },
    #[error("Manifest entry `{path}` is not a plain relative path")]
    InvalidPath { path: String },
    #[error("Symlink `{path}` points to `{target}`, outside the restore root")]
    SymlinkEscapes { path: String, target: String },
    #[error("Manifest entry `{path}` goes through the symlink `{symlink}`")]
    SymlinkInPath { path: String, symlink: String },
    #[error(
        "Manifest entry `{path}` is a `{kind}`; only files, directories and symlinks are restored"
    )]
    UnsupportedEntry { path: String, kind: String },
    #[error("Manifest lists `{path}` twice")]
    DuplicateEntry { path: String },
}

impl Error {
    /// True when the saved cache itself is damaged or hostile (not a local I/O failure):
    /// the caller should warn, discard it and build cold.
    pub fn is_corrupt_cache(&self) -> bool {
        !matches!(
            self,
            Error::Read { .. }
                | Error::Write { .. }
                | Error::NonUtf8Path { .. }
                | Error::Store { .. }
        )
    }
}
