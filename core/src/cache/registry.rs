//! A cache store in an OCI registry repository, for `--cache REGISTRY/REPOSITORY`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use bytes::Bytes;
use kiln_cache::archive::{self, ChunkRef};
use kiln_cache::{ChunkSource, Error as CacheError, LocalStore, Manifest, Store};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use serde::Deserialize;

use crate::registry::{Registry, RegistryError};

/// Media types of a cache in a registry.
pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.cache.v1";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.kiln.cache.config.v1+json";
pub const CHUNK_MEDIA_TYPE: &str = "application/vnd.kiln.cache.chunk.v1+zstd";
/// Annotations of a cache manifest in a registry.
pub const KEY_ANNOTATION: &str = "dev.kiln.cache.key";
pub const SAVED_AT_ANNOTATION: &str = "dev.kiln.cache.saved-at-ns";
/// The most a chunk blob may be: a chunk, compressed, is never much larger than the
/// largest chunk. The size the cache's own manifest claims is the writer's word and does
/// not raise the bound.
pub const MAX_CHUNK_BLOB: u64 = archive::CHUNK_MAX as u64 + 1024 * 1024;

/// A cache store in an OCI registry repository.
///
/// A saved cache is an OCI image manifest tagged with its key (`artifactType`
/// [`ARTIFACT_TYPE`]): the config blob holds kiln-cache's manifest and the map from each
/// chunk (named by its uncompressed bytes) to the blob holding it compressed; every
/// chunk blob is a layer, so the registry keeps it. Chunks go up first (HEAD before
/// each, none for chunks the restored cache already had), the config next, the tag
/// last. Downloaded chunks are kept in `$KILN_HOME/cache`, so a restore fetches only
/// what this machine lacks.
///
/// Its methods block on the runtime: call them from blocking threads.
pub struct RegistryStore {
    registry: Registry,
    handle: tokio::runtime::Handle,
    local: LocalStore,
    /// chunk digest → (blob digest, blob size), for chunks known to be in the registry.
    blobs: Mutex<HashMap<String, (String, u64)>>,
}

impl std::fmt::Debug for RegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryStore")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// An annotation of a manifest.
fn annotation<'a>(manifest: &'a OciImageManifest, key: &str) -> Option<&'a str> {
    manifest.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The config blob of a cache in a registry.
#[derive(Debug, serde::Serialize, Deserialize)]
struct RegistryConfig {
    schema_version: u32,
    manifest: serde_json::Value,
    blobs: BTreeMap<String, (String, u64)>,
}

/// An OCI tag for a key: keys are `[A-Za-z0-9_.-]` already; a tag cannot start with
/// `.` or `-` and has at most 128 characters.
pub fn tag_for(key: &str) -> String {
    let mut tag: String = key.chars().take(128).collect();
    if tag.starts_with(['.', '-']) {
        tag.replace_range(..1, "_");
    }
    tag
}

fn remote(what: &str, err: RegistryError) -> CacheError {
    CacheError::Store {
        what: what.to_string(),
        source: Box::new(err),
    }
}

impl RegistryStore {
    /// A store in `registry`'s repository, keeping downloaded chunks in `local`. Blocks
    /// on the current runtime: make it inside one.
    pub fn new(registry: Registry, local: LocalStore) -> RegistryStore {
        RegistryStore {
            registry,
            handle: tokio::runtime::Handle::current(),
            local,
            blobs: Mutex::new(HashMap::new()),
        }
    }

    fn at(&self, key: &str) -> Registry {
        self.registry.at_tag(&tag_for(key))
    }

    /// The OCI manifest under `key`'s tag, if the tag is a cache of that key.
    fn cache_manifest(&self, key: &str) -> Result<Option<OciImageManifest>, CacheError> {
        let found = self
            .handle
            .block_on(self.at(key).fetch_manifest())
            .map_err(|e| remote(&format!("read cache `{key}`"), e))?;
        let Some((bytes, _)) = found else {
            return Ok(None);
        };
        let manifest: OciImageManifest =
            serde_json::from_slice(&bytes).map_err(|source| CacheError::ManifestParse {
                key: key.to_owned(),
                source,
            })?;
        let is_cache = annotation(&manifest, KEY_ANNOTATION) == Some(key);
        Ok(is_cache.then_some(manifest))
    }
}

impl ChunkSource for RegistryStore {
    fn chunk(&self, chunk: &ChunkRef) -> Result<Vec<u8>, CacheError> {
        match self.local.chunk(chunk) {
            Ok(data) => return Ok(data),
            // Missing, or damaged (and dropped): fetch it again.
            Err(err) if err.is_corrupt_cache() => {}
            Err(err) => return Err(err),
        }
        let blob = self
            .blobs
            .lock()
            .expect("not poisoned")
            .get(&chunk.digest)
            .cloned();
        let Some((blob, size)) = blob else {
            return Err(CacheError::ChunkMissing {
                digest: chunk.digest.clone(),
            });
        };
        let max = MAX_CHUNK_BLOB;
        if size > max {
            return Err(remote(
                &format!("download chunk `{}`", chunk.digest),
                crate::registry::RegistryError::TooLarge {
                    what: format!("the chunk blob {blob}"),
                    limit: format!("{max} bytes"),
                },
            ));
        }
        let stored = self
            .handle
            .block_on(self.registry.pull_blob_bytes(&blob, max))
            .map_err(|e| remote(&format!("download chunk `{}`", chunk.digest), e))?;
        let data = archive::decompress(&stored[..], chunk)?;
        // Best effort: the next restore on this machine needs no download.
        let _ = self.local.put_stored_chunk(&chunk.digest, &stored);
        Ok(data)
    }
}

impl Store for RegistryStore {
    fn put_chunk(&self, data: &[u8]) -> Result<(ChunkRef, Option<u64>), CacheError> {
        let chunk = ChunkRef {
            digest: archive::digest(data),
            size: data.len() as u64,
        };
        if self
            .blobs
            .lock()
            .expect("not poisoned")
            .contains_key(&chunk.digest)
        {
            return Ok((chunk, None));
        }
        let compressed = archive::compress(data).map_err(|source| CacheError::Write {
            path: PathBuf::from(&chunk.digest),
            source,
        })?;
        let blob = archive::digest(&compressed);
        let size = compressed.len() as u64;
        let exists = self
            .handle
            .block_on(self.registry.has_blob(&blob))
            .map_err(|e| remote("check for a chunk", e))?;
        let written = if exists {
            None
        } else {
            self.handle
                .block_on(
                    self.registry
                        .push_blob_bytes(Bytes::from(compressed), &blob),
                )
                .map_err(|e| remote("upload a chunk", e))?;
            Some(size)
        };
        self.blobs
            .lock()
            .expect("not poisoned")
            .insert(chunk.digest.clone(), (blob, size));
        Ok((chunk, written))
    }

    fn get_manifest(&self, key: &str) -> Result<Option<Manifest>, CacheError> {
        let Some(oci) = self.cache_manifest(key)? else {
            return Ok(None);
        };
        let config_digest = oci.config.digest.as_str();
        let config_size = u64::try_from(oci.config.size).unwrap_or(u64::MAX);
        if archive::digest_hex(config_digest).is_none() {
            return Err(CacheError::ManifestDigest {
                key: key.to_owned(),
                expected: config_digest.to_owned(),
                actual: String::new(),
            });
        }
        if config_size > kiln_cache::MAX_MANIFEST_BYTES {
            return Err(CacheError::TooLarge {
                total: config_size,
                limit: kiln_cache::MAX_MANIFEST_BYTES,
            });
        }
        // oci-client checks the blob against its digest.
        let bytes = self
            .handle
            .block_on(
                self.registry
                    .pull_blob_bytes(config_digest, kiln_cache::MAX_MANIFEST_BYTES),
            )
            .map_err(|e| remote(&format!("download the manifest of cache `{key}`"), e))?;
        let parse_err = |source| CacheError::ManifestParse {
            key: key.to_owned(),
            source,
        };
        let config: RegistryConfig = serde_json::from_slice(&bytes).map_err(parse_err)?;
        let manifest_bytes = serde_json::to_vec(&config.manifest).map_err(parse_err)?;
        let manifest = Manifest::from_slice(key, &manifest_bytes)?;
        self.blobs
            .lock()
            .expect("not poisoned")
            .extend(config.blobs);
        Ok(Some(manifest))
    }

    fn put_manifest(&self, manifest: &Manifest) -> Result<String, CacheError> {
        let mut blobs = BTreeMap::new();
        {
            let known = self.blobs.lock().expect("not poisoned");
            for chunk in manifest.entries.iter().flat_map(|e| &e.chunks) {
                let blob = known
                    .get(&chunk.digest)
                    .ok_or_else(|| CacheError::ChunkMissing {
                        digest: chunk.digest.clone(),
                    })?;
                blobs.insert(chunk.digest.clone(), blob.clone());
            }
        }
        let layers: BTreeMap<&String, u64> = blobs.values().map(|(d, s)| (d, *s)).collect();
        let config = RegistryConfig {
            schema_version: 1,
            manifest: serde_json::to_value(manifest).expect("a manifest serializes"),
            blobs: blobs.clone(),
        };
        let config_bytes = serde_json::to_vec(&config).expect("a config serializes");
        let config_digest = archive::digest(&config_bytes);
        let exists = self
            .handle
            .block_on(self.registry.has_blob(&config_digest))
            .map_err(|e| remote("check for the cache manifest", e))?;
        if !exists {
            self.handle
                .block_on(
                    self.registry
                        .push_blob_bytes(Bytes::from(config_bytes.clone()), &config_digest),
                )
                .map_err(|e| remote("upload the cache manifest", e))?;
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let oci = OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
            artifact_type: Some(ARTIFACT_TYPE.to_string()),
            config: OciDescriptor {
                media_type: CONFIG_MEDIA_TYPE.to_string(),
                digest: config_digest.clone(),
                size: config_bytes.len() as i64,
                ..OciDescriptor::default()
            },
            layers: layers
                .iter()
                .map(|(digest, size)| OciDescriptor {
                    media_type: CHUNK_MEDIA_TYPE.to_string(),
                    digest: (*digest).clone(),
                    size: i64::try_from(*size).unwrap_or(i64::MAX),
                    ..OciDescriptor::default()
                })
                .collect(),
            subject: None,
            annotations: Some(BTreeMap::from([
                (KEY_ANNOTATION.to_string(), manifest.key.clone()),
                (SAVED_AT_ANNOTATION.to_string(), now.as_nanos().to_string()),
                (
                    oci_client::annotations::ORG_OPENCONTAINERS_IMAGE_CREATED.to_string(),
                    humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                ),
            ])),
        };
        let bytes = serde_json::to_vec(&oci).expect("a manifest serializes");
        self.handle
            .block_on(
                self.at(&manifest.key)
                    .push_manifest_bytes(bytes, OCI_IMAGE_MEDIA_TYPE),
            )
            .map_err(|e| remote(&format!("tag cache `{}`", manifest.key), e))?;
        Ok(config_digest)
    }

    fn parallelism(&self) -> usize {
        // Requests wait on the network, not the cores.
        8
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<(String, u64)>, CacheError> {
        let tags = self
            .handle
            .block_on(self.registry.list_tags())
            .map_err(|e| remote("list the cache repository's tags", e))?;
        let tag_prefix = tag_for(prefix);
        let mut keys = Vec::new();
        for tag in tags.iter().filter(|t| t.starts_with(&tag_prefix)) {
            let oci = match self
                .handle
                .block_on(self.registry.at_tag(tag).fetch_manifest())
            {
                Ok(Some((bytes, _))) => serde_json::from_slice::<OciImageManifest>(&bytes).ok(),
                Ok(None) => None,
                Err(err) => return Err(remote("read a cache's manifest", err)),
            };
            let Some(oci) = oci else { continue };
            let (Some(key), Some(at)) = (
                annotation(&oci, KEY_ANNOTATION),
                annotation(&oci, SAVED_AT_ANNOTATION).and_then(|s| s.parse::<u64>().ok()),
            ) else {
                continue;
            };
            if key.starts_with(prefix) {
                keys.push((key.to_owned(), at));
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fake::{connect, fake};

    /// A server that answers any request with `len` bytes of zeros, counting what it
    /// managed to send before the client hung up.
    async fn endless(len: u64) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = sent.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                         Content-Length: {len}\r\n\r\n"
                    );
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let zeros = vec![0u8; 1 << 20];
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(zeros.len() as u64);
                        let Ok(n_usize) = usize::try_from(n) else {
                            return;
                        };
                        if stream.write_all(&zeros[..n_usize]).await.is_err() {
                            return;
                        }
                        left -= n;
                        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        (address, sent)
    }

    #[tokio::test]
    async fn a_four_gib_chunk_is_cut_off_at_the_chunk_bound() {
        use wiremock::matchers::{method, path_regex};
        let (server, host) = fake().await;
        // Blobs are redirected, as registries send them to object storage, to a server
        // that streams 4 GiB.
        let (endless, sent) = endless(4 << 30).await;
        wiremock::Mock::given(method("GET"))
            .and(path_regex("^/v2/acme/app/blobs/"))
            .respond_with(
                wiremock::ResponseTemplate::new(307)
                    .insert_header("Location", format!("http://{endless}/chunk")),
            )
            .mount(&server)
            .await;
        let registry = connect(&host).await;
        let bound = MAX_CHUNK_BLOB;
        let err = registry
            .pull_blob_bytes(&format!("sha256:{}", "d".repeat(64)), bound)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, crate::registry::RegistryError::TooLarge { limit, .. } if limit.contains(&bound.to_string())),
            "{err}"
        );
        // Stopped near the bound: what the sockets buffered, not gigabytes.
        let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
        assert!(sent < bound + (64 << 20), "{sent} bytes were sent");
    }
}
