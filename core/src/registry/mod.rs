//! Talking to OCI registries: push and pull of Wasm artifacts, on oci-client.
//!
//! 1. [`Registry::connect`] resolves credentials ([`credentials`]), builds the client
//!    (plain HTTP only for `--insecure-registry` hosts, extra CA from `SSL_CERT_FILE`)
//!    and follows the registry's auth challenge (a bearer token is fetched here; basic
//!    credentials are first checked by the first request). A 401/403 is never retried:
//!    it fails at once and names the credential source.
//! 2. [`Registry::push`] sends blobs first (HEAD before each, so blobs the registry has
//!    are skipped; files are streamed in 4 MiB chunks, never held whole) and the manifest
//!    last, so the tag never points at missing content.
//! 3. Every request is retried on 429, 5xx and timeouts with exponential backoff and
//!    jitter, a bounded number of times, and each retry is reported.

pub mod credentials;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use tokio::io::AsyncReadExt;

use crate::diagnose::{Blame, Diagnose};
use crate::oci::MANIFEST_MEDIA_TYPE;
use crate::oci::layout::{Layout, LayoutError};
use crate::reporter::Reporter;
use credentials::{Credential, CredentialSource};

/// The size of each upload request (GHCR's per-request cap).
pub const CHUNK_SIZE: usize = 4 * 1024 * 1024;

/// The largest manifest kiln reads: Wasm and cosign manifests take a few kilobytes.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// The most layers kiln reads from one manifest: a Wasm artifact has one, a cosign
/// `.sig` or `.att` one per signature.
pub const MAX_LAYERS: usize = 1000;
/// The most pages of a tag listing kiln follows (a thousand tags each).
pub const MAX_TAG_PAGES: usize = 100;

/// An image manifest as a registry sent it, checked against its digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    pub manifest: OciImageManifest,
}

impl FetchedManifest {
    /// Stores the manifest in `layout`, tagged `name`, once its blobs are there (its
    /// digest was checked when it was fetched). Returns the digest.
    pub fn store(&self, layout: &Layout, name: &str) -> Result<String, RegistryError> {
        layout.put_blob(&self.bytes)?;
        layout.tag(name, &self.digest, self.bytes.len() as u64, None)?;
        Ok(self.digest.clone())
    }
}

/// How kiln talks to registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Hosts (`host[:port]`) spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// Per-request read and connect timeout.
    pub timeout: Duration,
    /// How many times a request is retried after a 429, a 5xx or a timeout.
    pub retries: u32,
    /// The first retry's delay; each later one doubles, plus jitter.
    pub backoff: Duration,
    /// kiln's environment: credentials (`KILN_REGISTRY_*`, the CI's, `DOCKER_CONFIG`,
    /// helpers on `PATH`) and `SSL_CERT_FILE`.
    pub env: crate::env::Env,
    /// The host the command pushes to or pulls from: the one `KILN_REGISTRY_USERNAME`
    /// and `KILN_REGISTRY_PASSWORD` are for (unless `KILN_REGISTRY_HOST` names another).
    pub primary_host: Option<String>,
    /// `--allow-insecure-auth`: credentials may go to `insecure` hosts over plain HTTP.
    pub allow_insecure_auth: bool,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: Vec::new(),
            timeout: Duration::from_secs(60),
            retries: 4,
            backoff: Duration::from_millis(500),
            env: crate::env::Env::default(),
            primary_host: None,
            allow_insecure_auth: false,
        }
    }
}

/// A connection to one repository of a registry.
pub struct Registry {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    source: CredentialSource,
    options: RegistryOptions,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("reference", &self.reference.whole())
            .field("credentials", &self.source)
            .finish_non_exhaustive()
    }
}

/// What a push sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// `registry/repo:tag@sha256:…`
    pub reference: String,
    pub digest: String,
    pub bytes_sent: u64,
    pub bytes_skipped: u64,
}

/// Parses `REGISTRY/REPO[:TAG]`, with `default_tag` when none is given. The registry and
/// repository are lowercased first ([`lowercase_name`]).
pub fn parse_reference(text: &str, default_tag: &str) -> Result<Reference, RegistryError> {
    let lowered = lowercase_name(text);
    let reference: Reference = lowered.parse().map_err(|source| RegistryError::Reference {
        reference: text.to_string(),
        source,
    })?;
    // `Reference` fills in `latest`; kiln's default is the artifact's own tag.
    let has_tag = text
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':') || last.contains('@'));
    Ok(if has_tag {
        reference
    } else {
        Reference::with_tag(
            reference.registry().to_string(),
            reference.repository().to_string(),
            default_tag.to_string(),
        )
    })
}

/// `text` with its registry and repository lowercased and its tag and digest as written.
/// OCI repository names are lowercase, and registries compare hosts without case, but
/// what a CI hands over often is not (`ghcr.io/${{ github.repository }}` is
/// `ghcr.io/Acme/App`); tags are case-sensitive and stay as they are.
pub fn lowercase_name(text: &str) -> String {
    let (name, digest) = match text.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (text, None),
    };
    let (path, last) = match name.rsplit_once('/') {
        Some((path, last)) => (Some(path), last),
        None => (None, name),
    };
    let (repository, tag) = match last.split_once(':') {
        Some((repository, tag)) => (repository, Some(tag)),
        None => (last, None),
    };
    let mut out = String::with_capacity(text.len());
    if let Some(path) = path {
        out.push_str(&path.to_lowercase());
        out.push('/');
    }
    out.push_str(&repository.to_lowercase());
    if let Some(tag) = tag {
        out.push(':');
        out.push_str(tag);
    }
    if let Some(digest) = digest {
        out.push('@');
        out.push_str(digest);
    }
    out
}

/// Whether `text` names a registry repository the way Docker tells one from a local name:
/// a `/` after a first component that has a `.` or a `:`, or is `localhost`. (Whether it
/// is also a path on disk is the caller's question.)
pub fn looks_like_reference(text: &str) -> bool {
    let host = text.split('/').next().unwrap_or_default();
    text.contains('/') && (host.contains('.') || host.contains(':') || host == "localhost")
}

impl Registry {
    /// Resolves credentials and authenticates for `operation` on `reference`.
    pub async fn connect(
        reference: Reference,
        operation: RegistryOperation,
        options: RegistryOptions,
    ) -> Result<Registry, RegistryError> {
        let host = reference.resolve_registry().to_string();
        let Credential { auth, source } =
            credentials::resolve(&host, &options.env, options.primary_host.as_deref()).await?;
        if !matches!(auth, RegistryAuth::Anonymous)
            && options.insecure.contains(&host)
            && !options.allow_insecure_auth
        {
            return Err(RegistryError::InsecureAuth {
                registry: host,
                from: source,
            });
        }
        tracing::debug!(%host, credentials = %source, "connecting");
        let mut config = ClientConfig {
            protocol: if options.insecure.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(options.insecure.clone())
            },
            read_timeout: Some(options.timeout),
            connect_timeout: Some(options.timeout),
            user_agent: concat!("kiln/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        if let Some(path) = options.env.get("SSL_CERT_FILE") {
            let data = std::fs::read(path).map_err(|source| RegistryError::CaFile {
                path: PathBuf::from(&path),
                source,
            })?;
            config.extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let registry = Registry {
            client: Client::new(config),
            reference,
            auth,
            source,
            options,
        };
        registry
            .retrying("authenticate", || {
                registry
                    .client
                    .auth(&registry.reference, &registry.auth, operation)
            })
            .await?;
        Ok(registry)
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The same connection, pointed at `tag` in the same repository: where cosign keeps
    /// an artifact's `.sig` and `.att` manifests.
    pub fn at_tag(&self, tag: &str) -> Registry {
        Registry {
            client: self.client.clone(),
            reference: Reference::with_tag(
                self.reference.registry().to_string(),
                self.reference.repository().to_string(),
                tag.to_string(),
            ),
            auth: self.auth.clone(),
            source: self.source.clone(),
            options: self.options.clone(),
        }
    }

    /// Where the credentials came from.
    pub fn credential_source(&self) -> &CredentialSource {
        &self.source
    }

    /// Pushes the manifest `manifest_digest` of `layout` and every blob it names, then
    /// tags it. Blobs the registry already has are not sent again.
    pub async fn push(
        &self,
        layout: &Layout,
        manifest_digest: &str,
        reporter: &dyn Reporter,
    ) -> Result<PushOutcome, RegistryError> {
        let manifest_bytes = layout.read_blob(manifest_digest)?;
        let manifest: OciImageManifest =
            serde_json::from_slice(&manifest_bytes).map_err(|source| RegistryError::Manifest {
                digest: manifest_digest.to_string(),
                source,
            })?;
        let mut outcome = PushOutcome {
            digest: manifest_digest.to_string(),
            ..Default::default()
        };
        let blobs: Vec<&OciDescriptor> = std::iter::once(&manifest.config)
            .chain(manifest.layers.iter())
            .collect();
        for blob in blobs {
            let size = u64::try_from(blob.size).unwrap_or_default();
            let exists = self
                .retrying("check for blob", || {
                    self.client.blob_exists(&self.reference, &blob.digest)
                })
                .await?;
            if exists {
                reporter.step(&format!("{} exists, skipped", short(&blob.digest)));
                outcome.bytes_skipped += size;
                continue;
            }
            let path = layout.blob_path(&blob.digest)?;
            let label = short(&blob.digest);
            reporter.transfer_started(label, size);
            let uploaded = self
                .retrying("upload blob", || {
                    self.upload(&path, &blob.digest, size, label, reporter)
                })
                .await;
            reporter.transfer_finished(label, uploaded.is_ok());
            uploaded?;
            outcome.bytes_sent += size;
        }
        reporter.step("Writing the manifest");
        let url = self
            .retrying("push manifest", || {
                self.client.push_manifest_raw(
                    &self.reference,
                    manifest_bytes.clone(),
                    MANIFEST_MEDIA_TYPE.parse().expect("valid header value"),
                )
            })
            .await?;
        // The registry names what it stored; it must be what was sent.
        if let Some(stored) = url.rsplit('/').next().filter(|s| s.starts_with("sha256:"))
            && stored != manifest_digest
        {
            return Err(RegistryError::DigestMismatch {
                what: "manifest".into(),
                sent: manifest_digest.to_string(),
                stored: stored.to_string(),
            });
        }
        outcome.reference = format!("{}@{}", self.reference.whole(), manifest_digest);
        Ok(outcome)
    }

    /// Streams one blob file in [`CHUNK_SIZE`] requests; the registry checks the digest
    /// when the upload is committed.
    async fn upload(
        &self,
        path: &Path,
        digest: &str,
        size: u64,
        label: &str,
        reporter: &dyn Reporter,
    ) -> Result<String, OciDistributionError> {
        let file = tokio::fs::File::open(path).await?;
        let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let stream = futures_util::stream::unfold((file, 0u64), move |(mut file, mut sent)| {
            let progress = progress_tx.clone();
            async move {
                // Up to `CHUNK_SIZE` bytes: fewer only at the end of the file.
                let mut buf = Vec::with_capacity(CHUNK_SIZE);
                let limit = CHUNK_SIZE as u64;
                if let Err(err) = (&mut file).take(limit).read_to_end(&mut buf).await {
                    return Some((Err(err.into()), (file, sent)));
                }
                // A chunk is handed over when the previous one was sent.
                let _ = progress.send(sent);
                sent += buf.len() as u64;
                (!buf.is_empty()).then(|| (Ok(Bytes::from(buf)), (file, sent)))
            }
        })
        .boxed();
        let push = self
            .client
            .push_blob_stream(&self.reference, stream, digest, Some(size));
        tokio::pin!(push);
        let location = loop {
            tokio::select! {
                result = &mut push => break result?,
                Some(done) = progress_rx.recv() => reporter.transfer_progress(label, done),
            }
        };
        reporter.transfer_progress(label, size);
        if let Some(stored) = location
            .rsplit('/')
            .next()
            .filter(|s| s.starts_with("sha256:"))
            && stored != digest
        {
            return Err(OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError {
                    expected: digest.to_string(),
                    actual: stored.to_string(),
                },
            ));
        }
        Ok(location)
    }

    /// The manifest the reference points at, or `None` when the registry has no such tag.
    pub async fn fetch_manifest(&self) -> Result<Option<(Vec<u8>, String)>, RegistryError> {
        let result = self
            .retrying("fetch manifest", || {
                self.client
                    .pull_manifest_raw(&self.reference, &self.auth, &[MANIFEST_MEDIA_TYPE])
            })
            .await;
        match result {
            Ok((bytes, _)) if bytes.len() > MAX_MANIFEST_BYTES => Err(RegistryError::TooLarge {
                what: format!("the manifest of `{}`", self.reference.whole()),
                limit: format!("{MAX_MANIFEST_BYTES} bytes"),
            }),
            Ok((bytes, digest)) => Ok(Some((bytes.to_vec(), digest))),
            Err(RegistryError::Request { source, .. }) if is_not_found(&source) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Pulls the manifest the reference points at, and its blobs, into `layout`, tagged
    /// `name` there. Returns the manifest digest.
    pub async fn pull(
        &self,
        layout: &Layout,
        name: &str,
        reporter: &dyn Reporter,
    ) -> Result<String, RegistryError> {
        self.pull_if_exists(layout, name, reporter)
            .await?
            .ok_or_else(|| RegistryError::NotFound {
                reference: self.reference.whole(),
            })
    }

    /// Like [`Self::pull`], but `None` when the registry has no such tag (a cosign
    /// `.sig` or `.att` that was never made), from the same single manifest request.
    pub async fn pull_if_exists(
        &self,
        layout: &Layout,
        name: &str,
        reporter: &dyn Reporter,
    ) -> Result<Option<String>, RegistryError> {
        let Some(manifest) = self.fetch_image_manifest().await? else {
            return Ok(None);
        };
        self.pull_blobs(layout, &manifest, reporter).await?;
        manifest.store(layout, name).map(Some)
    }

    /// The image manifest the reference points at, parsed, bounded and checked against
    /// its digest, with nothing downloaded but the manifest itself: what `kiln verify`
    /// checks the signature against before fetching any layer.
    pub async fn fetch_image_manifest(&self) -> Result<Option<FetchedManifest>, RegistryError> {
        let Some((bytes, sent)) = self.fetch_manifest().await? else {
            return Ok(None);
        };
        let digest = crate::oci::digest(&bytes);
        if digest != sent {
            return Err(RegistryError::DigestMismatch {
                what: "manifest".into(),
                sent,
                stored: digest,
            });
        }
        let manifest: OciImageManifest =
            serde_json::from_slice(&bytes).map_err(|source| RegistryError::Manifest {
                digest: digest.clone(),
                source,
            })?;
        if manifest.layers.len() > MAX_LAYERS {
            return Err(RegistryError::TooLarge {
                what: format!("the manifest {digest}"),
                limit: format!("{MAX_LAYERS} layers"),
            });
        }
        Ok(Some(FetchedManifest {
            bytes,
            digest,
            manifest,
        }))
    }

    /// Downloads the config and layers of `fetched` the layout lacks, each checked
    /// against its digest and cut off at its descriptor's size.
    pub async fn pull_blobs(
        &self,
        layout: &Layout,
        fetched: &FetchedManifest,
        reporter: &dyn Reporter,
    ) -> Result<(), RegistryError> {
        let manifest = &fetched.manifest;
        for blob in std::iter::once(&manifest.config).chain(manifest.layers.iter()) {
            let path = layout.blob_path(&blob.digest)?;
            if path.is_file() {
                continue;
            }
            reporter.step(&format!(
                "Downloading {} ({})",
                short(&blob.digest),
                crate::summary::human_size(u64::try_from(blob.size).unwrap_or_default())
            ));
            let tmp = tempfile::NamedTempFile::new_in(path.parent().expect("blob dir")).map_err(
                |source| RegistryError::Io {
                    path: path.clone(),
                    source,
                },
            )?;
            // Never more than the descriptor says: oci-client checks the digest only at
            // the end, and a hostile registry could stream forever.
            let size = u64::try_from(blob.size).unwrap_or_default();
            let exceeded = std::sync::atomic::AtomicBool::new(false);
            self.retrying("download blob", || async {
                let file = tokio::fs::File::create(tmp.path()).await?;
                let mut capped = Capped::new(file, size, &exceeded);
                // oci-client checks the content against the descriptor's digest.
                match self
                    .client
                    .pull_blob(&self.reference, blob, &mut capped)
                    .await
                {
                    Err(_) if capped.exceeded() => Ok(()),
                    other => other,
                }
            })
            .await?;
            if exceeded.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(RegistryError::TooLarge {
                    what: format!("the blob {}", blob.digest),
                    limit: format!("the {size} bytes its descriptor gives"),
                });
            }
            kiln_cache::fsutil::persist_synced(tmp, &path).map_err(|source| RegistryError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Whether the repository has the blob `digest` (a HEAD request).
    pub async fn has_blob(&self, digest: &str) -> Result<bool, RegistryError> {
        self.retrying("check for blob", || {
            self.client.blob_exists(&self.reference, digest)
        })
        .await
    }

    /// Uploads a small in-memory blob (a cache chunk); the registry checks the digest.
    pub async fn push_blob_bytes(&self, data: Bytes, digest: &str) -> Result<(), RegistryError> {
        self.retrying("upload blob", || {
            self.client.push_blob(&self.reference, data.clone(), digest)
        })
        .await
        .map(drop)
    }

    /// Downloads a blob of at most `max` bytes into memory, checked against `digest`.
    pub async fn pull_blob_bytes(&self, digest: &str, max: u64) -> Result<Vec<u8>, RegistryError> {
        let exceeded = std::sync::atomic::AtomicBool::new(false);
        let data = self
            .retrying("download blob", || async {
                // Stopped at `max` while it streams, not after it is all in memory.
                let mut capped = Capped::new(Vec::new(), max, &exceeded);
                match self
                    .client
                    .pull_blob(&self.reference, digest, &mut capped)
                    .await
                {
                    Err(_) if capped.exceeded() => Ok(Vec::new()),
                    Err(err) => Err(err),
                    Ok(()) => Ok(capped.into_inner()),
                }
            })
            .await?;
        if exceeded.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(RegistryError::TooLarge {
                what: format!("the blob {digest}"),
                limit: format!("{max} bytes"),
            });
        }
        Ok(data)
    }

    /// Every tag of the repository (`/v2/<name>/tags/list`, following pages); none when
    /// the repository does not exist yet.
    pub async fn list_tags(&self) -> Result<Vec<String>, RegistryError> {
        const PAGE: usize = 1000;
        let mut tags: Vec<String> = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let last = tags.last().cloned();
            let page = self
                .retrying("list tags", || {
                    self.client
                        .list_tags(&self.reference, &self.auth, Some(PAGE), last.as_deref())
                })
                .await;
            let page = match page {
                Ok(page) => page.tags,
                Err(RegistryError::Request { source, .. }) if is_not_found(&source) => Vec::new(),
                Err(err) => return Err(err),
            };
            let full = page.len() >= PAGE;
            // A registry that ignores `last` sends the same page again.
            if page.last().is_some() && page.last() == last.as_ref() {
                break;
            }
            tags.extend(page);
            if !full {
                return Ok(tags);
            }
        }
        Err(RegistryError::TooLarge {
            what: format!("the tag list of `{}`", self.reference.whole()),
            limit: format!("{MAX_TAG_PAGES} pages of {PAGE} tags, each after the last"),
        })
    }

    /// Pushes manifest bytes of `media_type` under this reference's tag.
    pub async fn push_manifest_bytes(
        &self,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let content_type: reqwest::header::HeaderValue =
            media_type.parse().map_err(|_| RegistryError::Io {
                path: PathBuf::from(media_type),
                source: std::io::Error::other("invalid media type"),
            })?;
        self.retrying("push manifest", || {
            self.client
                .push_manifest_raw(&self.reference, bytes.clone(), content_type.clone())
        })
        .await
        .map(drop)
    }

    /// Runs `op`, retrying on 429, 5xx and timeouts with exponential backoff and jitter.
    async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(err) if attempt < self.options.retries && is_transient(&err) => {
                    attempt += 1;
                    let base = self.options.backoff * 2u32.saturating_pow(attempt - 1);
                    let jitter = base.mul_f64(rand::random::<f64>() * 0.5);
                    tracing::warn!(
                        "{what} on {} failed ({}); retry {attempt} of {} in {:.1}s",
                        self.reference.resolve_registry(),
                        crate::diagnose::one_line(&err),
                        self.options.retries,
                        (base + jitter).as_secs_f64()
                    );
                    tokio::time::sleep(base + jitter).await;
                }
                Err(err) => return Err(self.classify(what, err)),
            }
        }
    }

    fn classify(&self, what: &str, err: OciDistributionError) -> RegistryError {
        let registry = self.reference.resolve_registry().to_string();
        if is_unauthorized(&err) {
            return RegistryError::Unauthorized {
                registry,
                source_name: self.source.to_string(),
                source: err,
            };
        }
        if let OciDistributionError::DigestError(_) = err {
            return RegistryError::Rejected {
                what: what.to_string(),
                registry,
                source: err,
            };
        }
        RegistryError::Request {
            what: what.to_string(),
            registry,
            source: err,
        }
    }
}

/// `sha256:` and the first 12 hex digits; all of `digest` when it is shorter (or, not
/// being a sha256 digest, does not cut there at a char boundary).
fn short(digest: &str) -> &str {
    digest.get(.."sha256:".len() + 12).unwrap_or(digest)
}

fn status_of(err: &OciDistributionError) -> Option<u16> {
    match err {
        OciDistributionError::ServerError { code, .. } => Some(*code),
        OciDistributionError::RequestError(e) => e.status().map(|s| s.as_u16()),
        OciDistributionError::UnauthorizedError { .. } => Some(401),
        _ => None,
    }
}

/// 429, 5xx, timeouts and dropped connections: worth another try.
fn is_transient(err: &OciDistributionError) -> bool {
    match err {
        OciDistributionError::RequestError(e) if e.is_timeout() || e.is_connect() => true,
        OciDistributionError::RequestError(e) if e.is_request() || e.is_body() => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, oci_client::errors::OciErrorCode::Toomanyrequests)),
        OciDistributionError::IoError(_) => false,
        other => status_of(other).is_some_and(|code| code == 429 || code >= 500),
    }
}

fn is_unauthorized(err: &OciDistributionError) -> bool {
    match err {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                oci_client::errors::OciErrorCode::Unauthorized
                    | oci_client::errors::OciErrorCode::Denied
            )
        }),
        other => status_of(other).is_some_and(|code| code == 401 || code == 403),
    }
}

fn is_not_found(err: &OciDistributionError) -> bool {
    match err {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                oci_client::errors::OciErrorCode::ManifestUnknown
                    | oci_client::errors::OciErrorCode::NameUnknown
                    | oci_client::errors::OciErrorCode::NotFound
            )
        }),
        other => status_of(other) == Some(404),
    }
}

/// A writer that takes at most `left` bytes: past them it fails and says so, so that a
/// registry streaming more than it promised is stopped while it streams.
struct Capped<'a, W> {
    inner: W,
    left: u64,
    exceeded: &'a std::sync::atomic::AtomicBool,
}

impl<'a, W> Capped<'a, W> {
    fn new(inner: W, limit: u64, exceeded: &'a std::sync::atomic::AtomicBool) -> Self {
        Capped {
            inner,
            left: limit,
            exceeded,
        }
    }

    fn exceeded(&self) -> bool {
        self.exceeded.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Capped<'_, W> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if buf.len() as u64 > this.left {
            this.exceeded
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return std::task::Poll::Ready(Err(std::io::Error::other(
                "more data than the registry promised",
            )));
        }
        let written = std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &written {
            this.left -= *n as u64;
        }
        written
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("The registry sent more than kiln reads: {what} is larger than {limit}")]
    TooLarge { what: String, limit: String },
    #[error("`{reference}` is not a valid image reference")]
    Reference {
        reference: String,
        #[source]
        source: oci_client::ParseError,
    },
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialError),
    #[error("Failed to read the CA certificates in `{}` (SSL_CERT_FILE)", path.display())]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{registry} refused the credentials from {source_name}")]
    Unauthorized {
        registry: String,
        source_name: String,
        #[source]
        source: OciDistributionError,
    },
    #[error(
        "kiln would send the credentials from {from} to {registry} over plain HTTP, where anyone on the network can read them"
    )]
    InsecureAuth {
        registry: String,
        from: CredentialSource,
    },
    #[error("Failed to {what} on {registry}")]
    Request {
        what: String,
        registry: String,
        #[source]
        source: OciDistributionError,
    },
    #[error("{registry} rejected the {what}: what it stored is not what kiln sent")]
    Rejected {
        what: String,
        registry: String,
        #[source]
        source: OciDistributionError,
    },
    #[error("The registry stored the {what} as `{stored}`, but kiln sent `{sent}`")]
    DigestMismatch {
        what: String,
        sent: String,
        stored: String,
    },
    #[error("The manifest `{digest}` is not a valid OCI image manifest")]
    Manifest {
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{reference}` does not exist")]
    NotFound { reference: String },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("Failed to write `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for RegistryError {
    fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Reference { .. } => Some(
                "write references as `REGISTRY/REPOSITORY[:TAG]`, e.g. `ghcr.io/acme/app:1.0`"
                    .into(),
            ),
            RegistryError::Credentials(e) => e.hint(),
            RegistryError::TooLarge { .. } => Some(
                "a registry that sends more than the descriptors say is faulty or hostile: \
                 check which registry this is, and that nothing sits between kiln and it"
                    .into(),
            ),
            RegistryError::CaFile { .. } => {
                Some("point SSL_CERT_FILE at a PEM file of CA certificates".into())
            }
            RegistryError::Unauthorized { registry, .. } => Some(format!(
                "check the credentials: set KILN_REGISTRY_USERNAME and KILN_REGISTRY_PASSWORD, \
                 or log in with `docker login {registry}`; the token needs push rights to the \
                 repository"
            )),
            RegistryError::InsecureAuth { registry, .. } => Some(format!(
                "give {registry} TLS (and SSL_CERT_FILE for a private CA), or pass \
                 `--allow-insecure-auth` if this network is yours alone"
            )),
            RegistryError::Request {
                registry, source, ..
            } => Some(match source {
                // No HTTP answer at all: refused, reset, timed out, TLS failed.
                OciDistributionError::RequestError(e) if e.status().is_none() => format!(
                    "check that {registry} is reachable and up (the connection failed or was \
                     cut); for a registry without TLS pass `--insecure-registry {registry}`, \
                     for a private CA set SSL_CERT_FILE"
                ),
                _ => "the registry's answer is above; rerun with `KILN_LOG=debug` for the requests"
                    .into(),
            }),
            RegistryError::Rejected { .. } | RegistryError::DigestMismatch { .. } => Some(
                "the upload was corrupted on the way or the registry rewrote it: push again; \
                 if it repeats, the registry or a proxy in between alters content"
                    .into(),
            ),
            RegistryError::Layout(e) => e.hint(),
            RegistryError::NotFound { .. } => Some("check the repository and tag".into()),
            RegistryError::Manifest { .. } | RegistryError::Io { .. } => None,
        }
    }

    fn blame(&self) -> Blame {
        match self {
            RegistryError::Io { .. } | RegistryError::Manifest { .. } => Blame::Internal,
            _ => Blame::User,
        }
    }
}

/// A fake registry (wiremock) for the faults a real one cannot be made to show, shared
/// by the tests of everything that talks to registries.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;

    /// Starts one: it serves `/v2/`, and whatever the test mounts. Returns its host.
    pub(crate) async fn fake() -> (wiremock::MockServer, String) {
        use wiremock::matchers::{method, path};
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(method("GET"))
            .and(path("/v2/"))
            .respond_with(wiremock::ResponseTemplate::new(200))
            .mount(&server)
            .await;
        let host = server.address().to_string();
        (server, host)
    }

    pub(crate) async fn connect(host: &str) -> Registry {
        let reference = parse_reference(&format!("{host}/acme/app"), "1").unwrap();
        Registry::connect(
            reference,
            RegistryOperation::Pull,
            RegistryOptions {
                insecure: vec![host.to_string()],
                retries: 0,
                ..RegistryOptions::default()
            },
        )
        .await
        .unwrap()
    }

    pub(crate) async fn serve_manifest(server: &wiremock::MockServer, manifest: &[u8]) {
        use wiremock::matchers::{method, path};
        wiremock::Mock::given(method("GET"))
            .and(path("/v2/acme/app/manifests/1"))
            .respond_with(
                wiremock::ResponseTemplate::new(200)
                    .insert_header("Content-Type", MANIFEST_MEDIA_TYPE)
                    .insert_header("Docker-Content-Digest", crate::oci::digest(manifest))
                    .set_body_bytes(manifest.to_vec()),
            )
            .mount(server)
            .await;
    }

    pub(crate) fn manifest_with(layers: Vec<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": "application/vnd.wasm.config.v0+json",
                "digest": format!("sha256:{}", "c".repeat(64)),
                "size": 2
            },
            "layers": layers,
        }))
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{connect, fake, manifest_with, serve_manifest};
    use super::*;

    #[test]
    fn references_get_the_artifact_tag_unless_given() {
        let r = parse_reference("127.0.0.1:5000/acme/app", "1.2.0").unwrap();
        assert_eq!(r.whole(), "127.0.0.1:5000/acme/app:1.2.0");
        let r = parse_reference("127.0.0.1:5000/acme/app:edge", "1.2.0").unwrap();
        assert_eq!(r.tag(), Some("edge"));
        let r = parse_reference("ghcr.io/acme/app", "0.1").unwrap();
        assert_eq!(r.registry(), "ghcr.io");
        assert!(parse_reference("UPPER/Case::bad", "1").is_err());
        // What `ghcr.io/${{ github.repository }}` gives: the name is lowercased, the tag
        // is not.
        let r = parse_reference("GHCR.io/Acme/My-App:Edge-1", "1").unwrap();
        assert_eq!(r.whole(), "ghcr.io/acme/my-app:Edge-1");
        let r = parse_reference("Localhost:5000/Acme/App", "V1").unwrap();
        assert_eq!(r.whole(), "localhost:5000/acme/app:V1");
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = parse_reference(&format!("ghcr.io/Acme/App@{digest}"), "1").unwrap();
        assert_eq!(r.digest(), Some(digest.as_str()));
        assert_eq!(r.repository(), "acme/app");
    }

    #[test]
    fn transient_errors_are_retried_and_auth_errors_are_not() {
        let server = |code| OciDistributionError::ServerError {
            code,
            url: "u".into(),
            message: "m".into(),
        };
        assert!(is_transient(&server(503)));
        assert!(is_transient(&server(429)));
        assert!(!is_transient(&server(404)));
        assert!(!is_transient(&OciDistributionError::UnauthorizedError {
            url: "u".into()
        }));
        assert!(is_unauthorized(&server(403)));
        assert!(is_not_found(&server(404)));
    }

    /// Pulls the fake's `1` into a new layout, which must fail: the layout (and the
    /// directory holding it) and the error.
    async fn pull_into_a_new_layout(
        registry: &Registry,
    ) -> (tempfile::TempDir, Layout, RegistryError) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let err = registry
            .pull(&layout, "app", &crate::reporter::Silent)
            .await
            .unwrap_err();
        (dir, layout, err)
    }

    #[tokio::test]
    async fn a_blob_longer_than_its_descriptor_is_cut_off_while_it_streams() {
        use wiremock::matchers::{method, path_regex};
        let (server, host) = fake().await;
        let layer = serde_json::json!({
            "mediaType": "application/wasm",
            "digest": format!("sha256:{}", "a".repeat(64)),
            "size": 16
        });
        serve_manifest(&server, &manifest_with(vec![layer])).await;
        // Every blob is 8 MiB, whatever its descriptor says.
        wiremock::Mock::given(method("GET"))
            .and(path_regex("^/v2/acme/app/blobs/"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_bytes(vec![0u8; 8 << 20]))
            .mount(&server)
            .await;
        let registry = connect(&host).await;
        let (_dir, layout, err) = pull_into_a_new_layout(&registry).await;
        assert!(
            matches!(&err, RegistryError::TooLarge { limit, .. } if limit.contains("2 bytes")),
            "{err}"
        );
        // Nothing of it was kept.
        assert!(layout.index().unwrap().manifests.is_empty());

        // In memory (a cache chunk): stopped at the cap, not after 8 MiB are held.
        let err = registry
            .pull_blob_bytes(&format!("sha256:{}", "b".repeat(64)), 1 << 20)
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_manifest_of_ten_thousand_layers_is_refused_before_any_blob() {
        let (server, host) = fake().await;
        let layers = (0..10_000)
            .map(|i| {
                serde_json::json!({
                    "mediaType": "application/wasm",
                    "digest": format!("sha256:{i:064x}"),
                    "size": 1
                })
            })
            .collect();
        serve_manifest(&server, &manifest_with(layers)).await;
        let registry = connect(&host).await;
        let (_dir, _layout, err) = pull_into_a_new_layout(&registry).await;
        assert!(err.to_string().contains("1000 layers"), "{err}");
        let asked_for_blobs = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .any(|r| r.url.path().contains("/blobs/"));
        assert!(!asked_for_blobs);
    }

    #[tokio::test]
    async fn an_endless_tag_list_ends() {
        use wiremock::matchers::{method, path};
        let (server, host) = fake().await;
        // A thousand tags, the same ones, whatever `last` asks for.
        let tags: Vec<String> = (0..1000).map(|i| format!("t{i:04}")).collect();
        wiremock::Mock::given(method("GET"))
            .and(path("/v2/acme/app/tags/list"))
            .respond_with(
                wiremock::ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"name": "acme/app", "tags": tags})),
            )
            .mount(&server)
            .await;
        let registry = connect(&host).await;
        let err = registry.list_tags().await.unwrap_err();
        assert!(matches!(err, RegistryError::TooLarge { .. }), "{err}");
        let pages = server.received_requests().await.unwrap().len();
        assert!(pages <= MAX_TAG_PAGES + 2, "{pages} requests");
    }
}
