//! Entry points for the cargo-fuzz targets in `fuzz/` (compiled only with the `fuzzing`
//! feature): each takes untrusted bytes and hands them to one of kiln's readers the way
//! kiln itself reads them (from a file where kiln reads a file), so the fuzz crate
//! reaches the readers without their internals being public.
//!
//! An entry point returns nothing: the reader's `Result` is dropped, and a panic (or an
//! assertion here about what a reader must never do) is the only failure.
//!
//! Inputs that hold several files are split at NUL bytes (`part0\0part1\0...`); no
//! reader takes a NUL in its text formats, so nothing of interest is lost. Where a part
//! names a blob by digest, `@N` (one digit) stands for the digest of part `N`, so the
//! fuzzer can reach what lies behind a digest check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kiln_cache::archive::{self, ChunkRef};
use kiln_cache::{ChunkSource, Manifest};

use crate::env::Env;
use crate::oci::layout::Layout;
use crate::oci::{MANIFEST_MEDIA_TYPE, annotations, digest};
use crate::sign::{
    Check, DSSE_ENVELOPE_MEDIA_TYPE, PREDICATE_TYPE_ANNOTATION, PublicKey, SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE, VerifyError,
};

/// The artifact digest every signature and attestation input is checked against.
pub const DIGEST: &str = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b";
/// The predicate type the DSSE target asks for.
pub const PREDICATE_TYPE: &str = "https://cyclonedx.org/bom";
/// The most a cache manifest may restore in one run (its files are written to disk).
const CACHE_MAX_TOTAL: u64 = 1 << 20;

/// A cache manifest (`Manifest::from_slice`, then `validate`); one that validates is
/// extracted twice into a fresh directory (the second time over the files of the first),
/// with every chunk served as zeros. Asserts that nothing is written outside the
/// directory and that no symlink there points out of it.
pub fn cache_manifest(data: &[u8]) {
    let Ok(manifest) = Manifest::from_slice("fuzz", data) else {
        return;
    };
    if manifest.validate(CACHE_MAX_TOTAL).is_err() {
        return;
    }
    let outer = fresh("cache");
    let root = outer.join("root");
    for _ in 0..2 {
        let _ = kiln_cache::extract(&manifest, &root, &Zeros);
    }
    let outside: Vec<_> = std::fs::read_dir(&outer)
        .expect("scratch directory")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|name| name != "root")
        .collect();
    assert!(outside.is_empty(), "wrote outside the root: {outside:?}");
    assert_links_inside(&root);
}

/// Serves every chunk as zeros of its declared size (no digest check: that is
/// [`archive::decompress`]'s job, fuzzed by [`cache_chunk`]).
struct Zeros;

impl ChunkSource for Zeros {
    fn chunk(&self, chunk: &ChunkRef) -> Result<Vec<u8>, kiln_cache::Error> {
        Ok(vec![0; chunk.size as usize])
    }
}

fn assert_links_inside(root: &Path) {
    let Ok(real_root) = root.canonicalize() else {
        return;
    };
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink() {
                if let Ok(resolved) = path.canonicalize() {
                    assert!(
                        resolved.starts_with(&real_root),
                        "{} resolves outside the root, to {}",
                        path.display(),
                        resolved.display()
                    );
                }
            } else if kind.is_dir() {
                stack.push(path);
            }
        }
    }
}

/// One stored cache chunk (`archive::decompress`): the first three bytes are the
/// declared size (big-endian, at most `CHUNK_MAX`; `0xff` first declares `u64::MAX`),
/// the rest the zstd stream. The declared digest is that of the empty chunk, so a
/// size-0 chunk can pass.
pub fn cache_chunk(data: &[u8]) {
    let (size, stored) = match data {
        [0xff, _, _, rest @ ..] => (u64::MAX, rest),
        [a, b, c, rest @ ..] => (
            u64::from(u32::from_be_bytes([0, *a, *b, *c])) % (archive::CHUNK_MAX as u64 + 1),
            rest,
        ),
        _ => return,
    };
    let chunk = ChunkRef {
        digest: archive::digest(b""),
        size,
    };
    if let Ok(out) = archive::decompress(stored, &chunk) {
        assert_eq!(out.len() as u64, chunk.size);
    }
}

/// An OCI image layout: part 0 is `index.json`, parts 1.. are blobs stored under their
/// digests. Reads the index, resolves every tag and the only artifact, parses each
/// manifest the index lists and reads its Wasm layer as `kiln run` does.
pub fn oci_layout(data: &[u8]) {
    let parts = with_digests(data);
    let root = fresh("oci");
    let blobs = root.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).expect("scratch directory");
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("scratch file");
    let mut parts = parts.into_iter();
    let index = parts.next().unwrap_or_default();
    std::fs::write(root.join("index.json"), &index.bytes).expect("scratch file");
    for blob in parts {
        let hex = blob.digest.trim_start_matches("sha256:");
        std::fs::write(blobs.join(hex), &blob.bytes).expect("scratch file");
    }

    let Ok(layout) = Layout::open(&root) else {
        return;
    };
    let _ = layout.resolve(None);
    let Ok(index) = layout.index() else {
        return;
    };
    for entry in &index.manifests {
        let name = entry
            .annotations
            .as_ref()
            .and_then(|a| a.get(annotations::REF_NAME));
        if let Some(name) = name {
            let _ = layout.resolve(Some(name));
            let _ = layout.tagged(name);
        }
        let _ = layout.manifest_at(&entry.digest);
        let located = crate::target::Located {
            layout: layout.clone(),
            name: name.cloned().unwrap_or_default(),
            manifest_digest: entry.digest.clone(),
        };
        let _ = crate::target::read_wasm(&located);
    }
}

/// A cosign `.att` manifest (DSSE envelopes holding in-toto Statements), verified for
/// [`DIGEST`] and [`PREDICATE_TYPE`]. One part: the envelope, as the one layer of a
/// well-formed manifest. More parts: part 0 is the manifest, parts 1.. its blobs.
///
/// Signatures are checked by [`AnyNonEmpty`], so the parsing behind them is reached.
pub fn dsse(data: &[u8]) {
    let (manifest, blobs) = cosign_input(data, DSSE_ENVELOPE_MEDIA_TYPE, |_| {
        BTreeMap::from([
            (SIGNATURE_ANNOTATION.to_string(), String::new()),
            (
                PREDICATE_TYPE_ANNOTATION.to_string(),
                PREDICATE_TYPE.to_string(),
            ),
        ])
    });
    let key = AnyNonEmpty::get();
    let _ = crate::sign::verify_attestation(&manifest, &blobs, DIGEST, PREDICATE_TYPE, key);
    let _ = crate::sign::verify_attestations(&manifest, &blobs, DIGEST, key);
}

/// A cosign `.sig` manifest (simple-signing payloads), verified for [`DIGEST`]. One part:
/// the payload, as the one layer of a well-formed manifest with a signature annotation.
/// More parts: part 0 is the manifest, parts 1.. its blobs.
pub fn simple_signing(data: &[u8]) {
    let (manifest, blobs) = cosign_input(data, SIMPLE_SIGNING_MEDIA_TYPE, |_| {
        BTreeMap::from([(
            SIGNATURE_ANNOTATION.to_string(),
            // base64 of "fuzz": any non-empty signature passes `AnyNonEmpty`.
            "ZnV6eg==".to_string(),
        )])
    });
    let _ = crate::sign::verify_signature(&manifest, &blobs, DIGEST, AnyNonEmpty::get());
}

/// The manifest and blobs of a cosign input (see [`dsse`]).
fn cosign_input(
    data: &[u8],
    media_type: &str,
    annotations: impl Fn(&[u8]) -> BTreeMap<String, String>,
) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let mut parts = with_digests(data);
    if parts.len() == 1 {
        let layer = parts.remove(0);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(b"{}"),
                "size": 2,
            },
            "layers": [{
                "mediaType": media_type,
                "digest": layer.digest,
                "size": layer.bytes.len(),
                "annotations": annotations(&layer.bytes),
            }],
        });
        let manifest = serde_json::to_vec(&manifest).expect("JSON");
        return (manifest, vec![(layer.digest, layer.bytes)]);
    }
    let mut parts = parts.into_iter();
    let manifest = parts.next().map(|p| p.bytes).unwrap_or_default();
    (manifest, parts.map(|p| (p.digest, p.bytes)).collect())
}

/// Accepts any non-empty signature, after running it through a real public key's check
/// (so the DER signature parser is fuzzed too); refuses an empty one.
struct AnyNonEmpty {
    key: PublicKey,
}

impl AnyNonEmpty {
    fn get() -> &'static AnyNonEmpty {
        static KEY: OnceLock<AnyNonEmpty> = OnceLock::new();
        KEY.get_or_init(|| AnyNonEmpty {
            // sigstore-rs's test key (see `sign::simple_signing`'s tests).
            key: crate::sign::load_public(
                "-----BEGIN PUBLIC KEY-----\n\
                 MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENptdY/l3nB0yqkXLBWkZWQwo6+cu\n\
                 OSWS1X9vPavpiQOoTTGC0xX57OojUadxF1cdQmrsiReWg2Wn4FneJfa8xw==\n\
                 -----END PUBLIC KEY-----\n",
            )
            .expect("test key"),
        })
    }
}

impl Check for AnyNonEmpty {
    fn check(
        &self,
        tag: &str,
        signature: &[u8],
        message: &[u8],
        _: &BTreeMap<String, String>,
    ) -> Result<(), VerifyError> {
        let _ = self.key.verifies(signature, message);
        if signature.is_empty() {
            return Err(VerifyError::BadSignature {
                tag: tag.to_string(),
            });
        }
        Ok(())
    }
}

/// A Docker `config.json`, asked for a registry's credential as a push would ask: the
/// first line is the registry, the rest the file. `PATH` is an empty directory, so a
/// configured credential helper is looked for but never run.
pub fn docker_config(data: &[u8]) {
    let (registry, config) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (data.get(..at), data.get(at + 1..)),
        None => (Some(b"ghcr.io".as_slice()), Some(data)),
    };
    let registry = String::from_utf8_lossy(registry.unwrap_or_default());
    let dir = fresh("docker");
    std::fs::write(dir.join("config.json"), config.unwrap_or_default()).expect("scratch file");
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).expect("scratch directory");
    let env = Env::from_pairs([
        ("DOCKER_CONFIG", dir.display().to_string()),
        ("HOME", dir.display().to_string()),
        ("PATH", bin.display().to_string()),
    ]);
    let resolved = runtime().block_on(crate::registry::credentials::resolve(&registry, &env, None));
    if let Err(err) = resolved {
        let _ = (err.to_string(), crate::diagnose::Diagnose::hint(&err));
    }
}

/// A project's `kiln.toml` (`KilnToml::read`).
pub fn kiln_toml(data: &[u8]) {
    let dir = fresh("kiln-toml");
    std::fs::write(dir.join(crate::settings::KILN_TOML), data).expect("scratch file");
    let _ = crate::settings::KilnToml::read(&dir);
}

/// Python project detection: parts 0..4 are `pyproject.toml`, `kiln.toml`, `setup.cfg`
/// and `setup.py` (an empty part is no file). Detection runs as `kiln build` runs it,
/// always as Python (Rust detection runs `cargo metadata`).
pub fn pyproject(data: &[u8]) {
    let dir = fresh("pyproject");
    let files = [
        "pyproject.toml",
        crate::settings::KILN_TOML,
        "setup.cfg",
        "setup.py",
    ];
    for (file, part) in files.iter().zip(data.splitn(files.len(), |&b| b == 0)) {
        if !part.is_empty() {
            std::fs::write(dir.join(file), part).expect("scratch file");
        }
    }
    let Ok(mut config) = crate::settings::KilnToml::read(&dir) else {
        return;
    };
    config.language = Some(crate::settings::Language::Python);
    let req = crate::stages::detect::DetectRequest {
        env: Env::new(),
        path: dir,
        config,
        ..Default::default()
    };
    let _ = runtime().block_on(crate::stages::detect::run(&req, &crate::reporter::Silent));
}

/// One part of a split input, with `@N` replaced by the digest of part `N`.
#[derive(Default)]
struct Part {
    bytes: Vec<u8>,
    digest: String,
}

/// Splits `data` at NULs (at most 10 parts) and resolves `@N` in each part to the digest
/// of a later part `N` (later only, so every digest is of the final bytes).
fn with_digests(data: &[u8]) -> Vec<Part> {
    let raw: Vec<&[u8]> = data.splitn(10, |&b| b == 0).collect();
    let mut parts: Vec<Part> = Vec::with_capacity(raw.len());
    for (i, bytes) in raw.iter().enumerate().rev() {
        let mut out = Vec::with_capacity(bytes.len());
        let mut rest = *bytes;
        while let Some((&b, tail)) = rest.split_first() {
            let later = match (b, tail.first()) {
                (b'@', Some(&d)) if d.is_ascii_digit() && usize::from(d - b'0') > i => {
                    // `parts` holds the later parts, last first.
                    let n = usize::from(d - b'0');
                    parts.len().checked_sub(n - i).and_then(|k| parts.get(k))
                }
                _ => None,
            };
            match later {
                Some(part) => {
                    out.extend_from_slice(part.digest.as_bytes());
                    rest = tail.get(1..).unwrap_or_default();
                }
                None => {
                    out.push(b);
                    rest = tail;
                }
            }
        }
        parts.push(Part {
            digest: digest(&out),
            bytes: out,
        });
    }
    parts.reverse();
    parts
}

/// An empty scratch directory for one target, the same one on every run of this
/// process; under `TMPDIR` (`scripts/fuzz` points it at a directory it removes).
fn fresh(name: &str) -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("kiln-fuzz-")
            .tempdir()
            .expect("scratch directory");
        dir.keep()
    });
    let dir = base.join(name);
    if let Err(err) = std::fs::remove_dir_all(&dir) {
        assert!(
            err.kind() == std::io::ErrorKind::NotFound,
            "clearing {}: {err}",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_later_parts_replace_placeholders() {
        let parts = with_digests(b"[@1,@2,@0,@9]\0x@2\0y");
        assert_eq!(parts.len(), 3);
        let y = digest(b"y");
        let x = format!("x{y}");
        assert_eq!(parts[2].bytes, b"y");
        assert_eq!(parts[1].bytes, x.as_bytes());
        assert_eq!(
            String::from_utf8(parts[0].bytes.clone()).unwrap(),
            format!("[{},{y},@0,@9]", digest(x.as_bytes()))
        );
    }

    fn seed(target: &str, name: &str) -> Vec<u8> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        std::fs::read(dir.join(target).join(name)).unwrap()
    }

    /// The well-formed seeds get past every check, so the fuzzer starts from inputs
    /// that reach the end of each reader.
    #[test]
    fn good_seeds_pass_every_check() {
        let manifest = Manifest::from_slice("k", &seed("cache_manifest", "tree.json")).unwrap();
        manifest.validate(CACHE_MAX_TOTAL).unwrap();
        let root = fresh("test-cache").join("root");
        kiln_cache::extract(&manifest, &root, &Zeros).unwrap();
        assert!(root.join("top").join("link").is_file());

        let (manifest, blobs) = cosign_input(
            &seed("dsse", "envelope.json"),
            DSSE_ENVELOPE_MEDIA_TYPE,
            |_| {
                BTreeMap::from([(
                    PREDICATE_TYPE_ANNOTATION.to_string(),
                    PREDICATE_TYPE.to_string(),
                )])
            },
        );
        let key = AnyNonEmpty::get();
        crate::sign::verify_attestation(&manifest, &blobs, DIGEST, PREDICATE_TYPE, key).unwrap();
        let parts = with_digests(&seed("dsse", "manifest-and-blobs"));
        let blobs: Vec<_> = parts
            .iter()
            .skip(1)
            .map(|p| (p.digest.clone(), p.bytes.clone()))
            .collect();
        let all = crate::sign::verify_attestations(&parts[0].bytes, &blobs, DIGEST, key).unwrap();
        assert_eq!(all.len(), 2);

        let (manifest, blobs) = cosign_input(
            &seed("simple_signing", "payload.json"),
            SIMPLE_SIGNING_MEDIA_TYPE,
            |_| BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), "ZnV6eg==".to_string())]),
        );
        crate::sign::verify_signature(&manifest, &blobs, DIGEST, key).unwrap();

        let parts = with_digests(&seed("oci_layout", "wasm-artifact"));
        let root = fresh("test-oci");
        let layout = Layout::create(&root).unwrap();
        for part in parts.iter().skip(1) {
            layout.put_blob(&part.bytes).unwrap();
        }
        std::fs::write(root.join("index.json"), &parts[0].bytes).unwrap();
        let entry = layout.resolve(None).unwrap();
        let located = crate::target::Located {
            layout,
            name: String::new(),
            manifest_digest: entry.digest,
        };
        assert_eq!(crate::target::read_wasm(&located).unwrap().name, "app");
    }

    #[test]
    fn seeds_run() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        type Target = (&'static str, fn(&[u8]));
        let targets: [Target; 8] = [
            ("cache_manifest", cache_manifest),
            ("cache_chunk", cache_chunk),
            ("oci_layout", oci_layout),
            ("dsse", dsse),
            ("simple_signing", simple_signing),
            ("docker_config", docker_config),
            ("kiln_toml", kiln_toml),
            ("pyproject", pyproject),
        ];
        for (target, run) in targets {
            for file in std::fs::read_dir(dir.join(target)).unwrap() {
                run(&std::fs::read(file.unwrap().path()).unwrap());
            }
        }
    }
}
