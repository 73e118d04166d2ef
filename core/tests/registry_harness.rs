//! The registry harness itself: each mode of the real `docker-registry` takes an
//! artifact pushed by skopeo and gives it back, unchanged, to skopeo and PyPI `oras`.

mod common;

use std::path::Path;

use common::registry::{
    Mode, Registry, oras_fetch, oras_fetch_output, skopeo, skopeo_copy_to, skopeo_inspect_config,
    skopeo_inspect_output, skopeo_inspect_raw,
};
use common::stderr;
use sha2::{Digest, Sha256};

/// A Wasm artifact in an OCI layout, tagged `v1`.
struct Artifact {
    /// `oci:DIR:v1`
    src: String,
    manifest: serde_json::Value,
    manifest_digest: String,
    config: serde_json::Value,
    layer_digest: String,
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn write_blob(layout: &Path, data: &[u8]) -> serde_json::Value {
    let digest = digest(data);
    let path = layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    std::fs::write(path, data).unwrap();
    serde_json::json!({ "digest": digest, "size": data.len() })
}

/// Writes the layout by hand: what skopeo reads and pushes is only these bytes.
fn artifact(dir: &Path, marker: &str) -> Artifact {
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    // A minimal module with a custom section, so each artifact has its own digest.
    let mut layer = b"\0asm\x01\0\0\0\0".to_vec();
    layer.push(u8::try_from(marker.len() + 2).unwrap());
    layer.push(1);
    layer.push(b'm');
    layer.extend_from_slice(marker.as_bytes());
    let config = serde_json::json!({ "architecture": "wasm", "os": "wasip1", "marker": marker });

    let mut layer_desc = write_blob(&layout, &layer);
    layer_desc["mediaType"] = "application/wasm".into();
    let mut config_desc = write_blob(&layout, &serde_json::to_vec(&config).unwrap());
    config_desc["mediaType"] = "application/vnd.wasm.config.v0+json".into();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/wasm",
        "config": config_desc,
        "layers": [layer_desc],
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let mut manifest_desc = write_blob(&layout, &manifest_bytes);
    manifest_desc["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    manifest_desc["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": "v1" });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(
            &serde_json::json!({ "schemaVersion": 2, "manifests": [manifest_desc] }),
        )
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    Artifact {
        src: format!("oci:{}:v1", layout.display()),
        manifest,
        manifest_digest: digest(&manifest_bytes),
        config,
        layer_digest: digest(&layer),
    }
}

#[track_caller]
fn push(registry: &Registry, artifact: &Artifact, repo_tag: &str) {
    let out = skopeo_copy_to(registry, &artifact.src, repo_tag);
    assert!(out.status.success(), "skopeo copy: {}", stderr(&out));
}

/// Both peers read back exactly what was pushed, and storage agrees.
#[track_caller]
fn assert_stored(registry: &Registry, artifact: &Artifact, repo: &str, tag: &str) {
    let repo_tag = format!("{repo}:{tag}");
    assert!(registry.tag_exists(repo, tag), "{repo_tag} not in storage");
    assert_eq!(
        registry.tag_digest(repo, tag).as_deref(),
        Some(artifact.manifest_digest.as_str())
    );
    assert!(registry.blob_exists(&artifact.layer_digest));

    assert_eq!(skopeo_inspect_raw(registry, &repo_tag), artifact.manifest);
    assert_eq!(skopeo_inspect_config(registry, &repo_tag), artifact.config);
    let by_digest = format!("{repo}@{}", artifact.manifest_digest);
    assert_eq!(skopeo_inspect_raw(registry, &by_digest), artifact.manifest);

    let oras = oras_fetch(registry, &repo_tag);
    assert_eq!(oras["manifest"], artifact.manifest);
    assert_eq!(oras["config"], artifact.config);
    assert_eq!(oras["layer_sha256"], artifact.layer_digest.as_str());
}

#[test]
fn plain() {
    let temp = tempfile::tempdir().unwrap();
    let registry = Registry::start(Mode::Plain);
    assert!(registry.host().starts_with("127.0.0.1:"));
    assert_eq!(registry.url(), format!("http://{}", registry.host()));
    assert_eq!(registry.ca_cert(), None);
    assert!(!registry.tag_exists("demo/app", "v1"));

    let artifact = artifact(temp.path(), "plain");
    push(&registry, &artifact, "demo/app:v1");
    assert_stored(&registry, &artifact, "demo/app", "v1");
    assert!(!registry.tag_exists("demo/app", "v2"));
    assert!(!registry.tag_exists("demo/other", "v1"));
    // A tag that is not there is an error for both peers.
    assert!(
        !skopeo_inspect_output(&registry, "demo/app:v2", &[])
            .status
            .success()
    );
    assert!(!oras_fetch_output(&registry, "demo/app:v2").status.success());
}

#[test]
fn basic_auth() {
    let temp = tempfile::tempdir().unwrap();
    let registry = Registry::start(Mode::basic_auth("kiln", "s3cret pass"));
    assert_eq!(registry.credentials(), Some(("kiln", "s3cret pass")));
    let artifact = artifact(temp.path(), "basic-auth");

    // Wrong or missing credentials: refused, nothing stored.
    let wrong = skopeo(&registry)
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds=kiln:wrong",
        ])
        .arg(&artifact.src)
        .arg(format!("docker://{}", registry.reference("demo/app:v1")))
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("authentication required"),
        "{}",
        stderr(&wrong)
    );
    assert!(!registry.tag_exists("demo/app", "v1"));

    push(&registry, &artifact, "demo/app:v1");
    assert_stored(&registry, &artifact, "demo/app", "v1");

    let reference = format!("docker://{}", registry.reference("demo/app:v1"));
    for creds in [&["--creds=kiln:wrong"][..], &[]] {
        let out = skopeo(&registry)
            .args(["inspect", "--raw", "--tls-verify=false"])
            .args(creds)
            .arg(&reference)
            .output()
            .unwrap();
        assert!(!out.status.success(), "skopeo read without valid creds");
        assert!(
            stderr(&out).contains("authentication required"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn tls() {
    let temp = tempfile::tempdir().unwrap();
    let registry = Registry::start(Mode::Tls);
    assert_eq!(registry.url(), format!("https://{}", registry.host()));
    let ca = registry.ca_cert().expect("a CA in TLS mode");
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );

    let artifact = artifact(temp.path(), "tls");
    push(&registry, &artifact, "demo/app:v1");
    assert_stored(&registry, &artifact, "demo/app", "v1");

    // Without the CA the server is not trusted: it really is our certificate.
    let out = skopeo(&registry)
        .args(["inspect", "--raw"])
        .arg(format!("docker://{}", registry.reference("demo/app:v1")))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("certificate signed by unknown authority"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kill_and_restart_keep_storage() {
    let temp = tempfile::tempdir().unwrap();
    let mut registry = Registry::start(Mode::Plain);
    let host = registry.host();
    let artifact = artifact(temp.path(), "restart");
    push(&registry, &artifact, "demo/app:v1");
    assert!(registry.is_running());

    registry.kill();
    assert!(!registry.is_running());
    assert!(
        std::net::TcpStream::connect(&host).is_err(),
        "{host} still accepts connections after kill"
    );
    assert!(
        !skopeo_inspect_output(&registry, "demo/app:v1", &[])
            .status
            .success()
    );
    assert!(
        registry.tag_exists("demo/app", "v1"),
        "storage survives a kill"
    );

    registry.restart();
    assert!(registry.is_running());
    assert_eq!(registry.host(), host);
    assert_stored(&registry, &artifact, "demo/app", "v1");
}
