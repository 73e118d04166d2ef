//! An OCI image layout on disk: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.
//!
//! This is kiln's embedded default store, readable by other OCI tools
//! (`skopeo inspect oci:DIR:NAME:TAG`). Every write goes to a temp file in the same
//! directory and is renamed into place; `index.json` is rewritten under a lock, so a
//! killed kiln never leaves a tag pointing at a missing blob, and two kilns writing to
//! one layout do not lose each other's tags.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use oci_client::manifest::{ImageIndexEntry, OciImageIndex, OciImageManifest};
use tempfile::NamedTempFile;

use super::{MANIFEST_MEDIA_TYPE, annotations, digest, digest_file, sha256_hex};
use crate::diagnose::{Blame, Diagnose};

const OCI_LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens the layout at `root`, creating it if it does not exist.
    pub fn create(root: &Path) -> Result<Layout, LayoutError> {
        let io = |source| LayoutError::Io {
            path: root.to_path_buf(),
            source,
        };
        fs::create_dir_all(root.join("blobs").join("sha256")).map_err(io)?;
        let layout = Layout {
            root: root.to_path_buf(),
        };
        if !root.join(OCI_LAYOUT_FILE).is_file() {
            layout.write_atomic(OCI_LAYOUT_FILE, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        // Under the index lock: another kiln may be tagging into a layout it just made,
        // and an empty index written over its one would lose the tag.
        layout.locked(|| {
            if !root.join(INDEX_FILE).is_file() {
                layout.write_atomic(INDEX_FILE, &to_json(&empty_index()))?;
            }
            Ok(())
        })?;
        Ok(layout)
    }

    /// Opens an existing layout.
    pub fn open(root: &Path) -> Result<Layout, LayoutError> {
        if !root.join(OCI_LAYOUT_FILE).is_file() {
            return Err(LayoutError::NotALayout {
                path: root.to_path_buf(),
            });
        }
        Ok(Layout {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path a blob with `digest` is stored at.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, LayoutError> {
        let hex = sha256_hex(digest).ok_or_else(|| LayoutError::BadDigest {
            digest: digest.to_string(),
        })?;
        Ok(self.root.join("blobs").join("sha256").join(hex))
    }

    /// Stores `bytes` as a blob and returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, LayoutError> {
        let digest = digest(bytes);
        let path = self.blob_path(&digest)?;
        if !path.is_file() {
            self.write_atomic(path.strip_prefix(&self.root).expect("inside"), bytes)?;
        }
        Ok(digest)
    }

    /// Stores the file at `src` as a blob whose digest the caller already knows.
    pub fn put_blob_file(&self, src: &Path, expected: &str) -> Result<(), LayoutError> {
        let path = self.blob_path(expected)?;
        if path.is_file() {
            return Ok(());
        }
        let dir = path.parent().expect("blob dir");
        let io = |source| LayoutError::Io {
            path: src.to_path_buf(),
            source,
        };
        let tmp = NamedTempFile::new_in(dir).map_err(io)?;
        fs::copy(src, tmp.path()).map_err(io)?;
        let (actual, _) = digest_file(tmp.path()).map_err(io)?;
        if actual != expected {
            return Err(LayoutError::DigestMismatch {
                path: src.to_path_buf(),
                expected: expected.to_string(),
                actual,
            });
        }
        kiln_cache::fsutil::persist_synced(tmp, &path).map_err(io)?;
        Ok(())
    }

    /// Reads a blob and checks its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, LayoutError> {
        let path = self.blob_path(digest)?;
        let bytes = fs::read(&path).map_err(|source| LayoutError::Io {
            path: path.clone(),
            source,
        })?;
        let actual = super::digest(&bytes);
        if actual != digest {
            return Err(LayoutError::DigestMismatch {
                path,
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// The layout's index.
    pub fn index(&self) -> Result<OciImageIndex, LayoutError> {
        let path = self.root.join(INDEX_FILE);
        let bytes = fs::read(&path).map_err(|source| LayoutError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| LayoutError::Json { path, source })
    }

    /// Points `name` (an `org.opencontainers.image.ref.name`) at a manifest, replacing
    /// whatever it pointed at. The manifest blob must already be stored.
    pub fn tag(
        &self,
        name: &str,
        manifest_digest: &str,
        manifest_size: u64,
        artifact_type: Option<&str>,
    ) -> Result<(), LayoutError> {
        if !self.blob_path(manifest_digest)?.is_file() {
            return Err(LayoutError::MissingBlob {
                digest: manifest_digest.to_string(),
            });
        }
        self.locked(|| {
            let mut index = self.index()?;
            index
                .manifests
                .retain(|entry| ref_name(entry) != Some(name));
            index.manifests.push(ImageIndexEntry {
                media_type: MANIFEST_MEDIA_TYPE.to_string(),
                digest: manifest_digest.to_string(),
                size: manifest_size as i64,
                platform: None,
                annotations: Some(BTreeMap::from([(
                    annotations::REF_NAME.to_string(),
                    name.to_string(),
                )])),
                artifact_type: artifact_type.map(str::to_string),
            });
            self.write_atomic(INDEX_FILE, &to_json(&index))
        })
    }

    /// Runs `f` holding the layout's `index.json` lock (an advisory file lock, which
    /// other kiln processes writing the same layout take too).
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, LayoutError>) -> Result<T, LayoutError> {
        let lock_path = self.root.join("index.json.lock");
        let io = |source| LayoutError::Io {
            path: lock_path.clone(),
            source,
        };
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io)?;
        lock.lock().map_err(io)?;
        let result = f();
        drop(lock);
        result
    }

    /// Finds the manifest tagged `name`; with no name, the layout's only manifest.
    pub fn resolve(&self, name: Option<&str>) -> Result<ImageIndexEntry, LayoutError> {
        let index = self.index()?;
        let names = || {
            index
                .manifests
                .iter()
                .filter_map(|e| ref_name(e).map(str::to_string))
                .collect::<Vec<_>>()
        };
        match name {
            Some(name) => index
                .manifests
                .iter()
                .find(|e| ref_name(e) == Some(name))
                .cloned()
                .ok_or_else(|| LayoutError::UnknownRef {
                    name: name.to_string(),
                    layout: self.root.clone(),
                    available: names(),
                }),
            None => match index.manifests.as_slice() {
                [only] => Ok(only.clone()),
                _ => Err(LayoutError::AmbiguousRef {
                    layout: self.root.clone(),
                    available: names(),
                }),
            },
        }
    }

    /// The manifest tagged `name` as (digest, bytes), or `None` when no manifest has that
    /// tag (a cosign `.sig` or `.att` that was never made).
    pub fn tagged(&self, name: &str) -> Result<Option<(String, Vec<u8>)>, LayoutError> {
        match self.resolve(Some(name)) {
            Ok(entry) => {
                let bytes = self.read_blob(&entry.digest)?;
                Ok(Some((entry.digest, bytes)))
            }
            Err(LayoutError::UnknownRef { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Reads and parses the manifest with `digest`.
    pub fn manifest_at(&self, digest: &str) -> Result<OciImageManifest, LayoutError> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| LayoutError::Json {
            path: self.blob_path(digest).unwrap_or_default(),
            source,
        })
    }

    fn write_atomic(&self, rel: impl AsRef<Path>, bytes: &[u8]) -> Result<(), LayoutError> {
        let path = self.root.join(rel);
        kiln_cache::fsutil::write_atomic(&path, bytes)
            .map_err(|source| LayoutError::Io { path, source })
    }
}

fn ref_name(entry: &ImageIndexEntry) -> Option<&str> {
    entry
        .annotations
        .as_ref()?
        .get(annotations::REF_NAME)
        .map(String::as_str)
}

fn empty_index() -> OciImageIndex {
    OciImageIndex {
        schema_version: 2,
        media_type: Some(INDEX_MEDIA_TYPE.to_string()),
        manifests: Vec::new(),
        artifact_type: None,
        annotations: None,
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("OCI types serialise")
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("Failed to access `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not an OCI image layout (no `oci-layout` file)", path.display())]
    NotALayout { path: PathBuf },
    #[error("`{digest}` is not a sha256 digest")]
    BadDigest { digest: String },
    #[error("Blob `{digest}` is not in the layout")]
    MissingBlob { digest: String },
    #[error("Content of `{}` does not match its digest `{expected}` (it is `{actual}`)", path.display())]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("Failed to parse `{}`", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("No artifact tagged `{name}` in `{}`", layout.display())]
    UnknownRef {
        name: String,
        layout: PathBuf,
        available: Vec<String>,
    },
    #[error("`{}` holds {} artifacts; say which", layout.display(), available.len())]
    AmbiguousRef {
        layout: PathBuf,
        available: Vec<String>,
    },
}

impl Diagnose for LayoutError {
    fn hint(&self) -> Option<String> {
        match self {
            LayoutError::UnknownRef { available, .. }
            | LayoutError::AmbiguousRef { available, .. } => Some(if available.is_empty() {
                "the layout is empty: build the project first with `kiln build`".into()
            } else {
                format!("tags in the layout: {}", available.join(", "))
            }),
            LayoutError::NotALayout { .. } => {
                Some("build the project first with `kiln build`, or pass `--layout DIR`".into())
            }
            LayoutError::DigestMismatch { .. } => Some(
                "the layout was modified or corrupted: rebuild with `kiln build` to rewrite it"
                    .into(),
            ),
            _ => None,
        }
    }

    fn blame(&self) -> Blame {
        match self {
            LayoutError::Io { .. } => Blame::Internal,
            _ => Blame::User,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Making a layout writes its empty `index.json` under the index lock: a kiln that
    /// is tagging into the same new layout (holding the lock) does not have its index
    /// replaced by an empty one.
    #[test]
    fn a_new_layout_waits_for_the_index_lock() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("oci");
        fs::create_dir_all(&root).unwrap();
        let held = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("index.json.lock"))
            .unwrap();
        held.lock().unwrap();
        let creator = {
            let root = root.clone();
            std::thread::spawn(move || Layout::create(&root).map(|_| ()))
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !root.join(INDEX_FILE).exists(),
            "index.json was written without the lock"
        );
        held.unlock().unwrap();
        creator.join().unwrap().unwrap();
        assert!(
            Layout::open(&root)
                .unwrap()
                .index()
                .unwrap()
                .manifests
                .is_empty()
        );
    }

    #[test]
    fn blobs_round_trip_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let digest = layout.put_blob(b"hello").unwrap();
        assert_eq!(layout.read_blob(&digest).unwrap(), b"hello");
        fs::write(layout.blob_path(&digest).unwrap(), b"hellO").unwrap();
        assert!(matches!(
            layout.read_blob(&digest),
            Err(LayoutError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn tags_replace_and_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let a = layout.put_blob(b"{\"a\":1}").unwrap();
        let b = layout.put_blob(b"{\"b\":2}").unwrap();
        layout.tag("app:1", &a, 7, None).unwrap();
        layout.tag("app:2", &b, 7, None).unwrap();
        layout.tag("app:1", &b, 7, None).unwrap();
        assert_eq!(layout.index().unwrap().manifests.len(), 2);
        assert_eq!(layout.resolve(Some("app:1")).unwrap().digest, b);
        assert!(matches!(
            layout.resolve(None),
            Err(LayoutError::AmbiguousRef { .. })
        ));
        assert!(matches!(
            layout.resolve(Some("nope")),
            Err(LayoutError::UnknownRef { .. })
        ));
        let missing = digest(b"not stored");
        assert!(matches!(
            layout.tag("x", &missing, 1, None),
            Err(LayoutError::MissingBlob { .. })
        ));
    }

    /// Two kilns storing into one layout at once (two `kiln build`s of a monorepo's
    /// projects into the shared `.kiln/oci`): every tag of both survives.
    #[test]
    fn concurrent_writers_keep_every_tag() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("oci");
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let root = root.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        // Each opens (or makes) the layout as a fresh process would.
                        let layout = Layout::create(&root).unwrap();
                        let manifest = format!("{{\"w\":{w},\"i\":{i}}}");
                        let digest = layout.put_blob(manifest.as_bytes()).unwrap();
                        layout
                            .tag(
                                &format!("app-{w}:{i}"),
                                &digest,
                                manifest.len() as u64,
                                None,
                            )
                            .unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let layout = Layout::open(&root).unwrap();
        assert_eq!(layout.index().unwrap().manifests.len(), 100);
        for w in 0..4 {
            for i in 0..25 {
                layout.resolve(Some(&format!("app-{w}:{i}"))).unwrap();
            }
        }
    }

    #[test]
    fn rejects_digests_that_escape() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        assert!(matches!(
            layout.blob_path("sha256:../../x"),
            Err(LayoutError::BadDigest { .. })
        ));
    }
}
