//! The fixed parameters of the archive format (version 1): the manifest version and how
//! content is cut and compressed. Changing any of them changes what a saved cache means.
//!
//! They sit below [`crate::error`] (whose messages name the version this crate reads)
//! and [`crate::archive`], which re-exports them under their public paths.

/// The manifest version this crate writes and reads.
pub const MANIFEST_VERSION: u32 = 1;
/// FastCDC's smallest cut, except for a file's last chunk.
pub const CHUNK_MIN: usize = 256 * 1024;
/// FastCDC's target average chunk size.
pub const CHUNK_AVG: usize = 1024 * 1024;
/// FastCDC's largest chunk; a manifest declaring a bigger one is refused.
pub const CHUNK_MAX: usize = 4 * 1024 * 1024;
/// zstd level: 3 is zstd's default, fast enough to stay I/O bound.
pub const ZSTD_LEVEL: i32 = 3;
