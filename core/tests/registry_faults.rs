//! `kiln push` when the registry fails: killed mid-upload, a 500 on a blob upload, too
//! slow to answer, or refusing the credentials. The registry is the real
//! `docker-registry`; the 500 and the slowness come from `tests/peers/faulty_proxy.py`
//! in front of it, since a real registry cannot be made to show them.
//!
//! The artifacts are OCI image layouts written by hand, so no toolchain is needed.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::registry::{Mode, Registry};
use common::{TestContext, assert_exit, assert_success, peer_python, repo_root, stderr, stdout};
use sha2::{Digest, Sha256};

/// How long any one kiln run may take before the test gives up on it: a bound against
/// hangs, far above what a run needs.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// An artifact in a hand-written OCI image layout.
#[derive(Debug)]
struct Artifact {
    layout: PathBuf,
    /// Its `org.opencontainers.image.ref.name`, `NAME:TAG`.
    name: String,
    manifest_digest: String,
    layer_digest: String,
    layer_size: u64,
}

impl Artifact {
    /// `oci:DIR:NAME:TAG`, for `kiln push`.
    fn source(&self) -> String {
        format!("oci:{}:{}", self.layout.display(), self.name)
    }
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn leb128(mut value: usize, out: &mut Vec<u8>) {
    loop {
        let byte = u8::try_from(value & 0x7f).unwrap();
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `len` pseudo-random bytes (xorshift64), so nothing on the way can compress them.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A valid core module: the header and one custom section `section` holding `payload`.
fn module_with_custom_section(section: &str, payload: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(payload.len() + section.len() + 8);
    leb128(section.len(), &mut content);
    content.extend_from_slice(section.as_bytes());
    content.extend_from_slice(payload);
    let mut module = Vec::with_capacity(content.len() + 16);
    module.extend_from_slice(b"\0asm\x01\0\0\0");
    module.push(0); // custom section
    leb128(content.len(), &mut module);
    module.extend_from_slice(&content);
    module
}

fn write_blob(layout: &Path, media_type: &str, data: &[u8]) -> serde_json::Value {
    let digest = sha256(data);
    std::fs::write(
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
        data,
    )
    .unwrap();
    serde_json::json!({ "mediaType": media_type, "digest": digest, "size": data.len() })
}

/// Writes a Wasm OCI artifact tagged `name` (`NAME:TAG`) into a new layout at `dir`:
/// a `application/vnd.wasm.config.v0+json` config and one `application/wasm` layer, a
/// module whose custom section holds `payload`.
fn write_artifact(dir: &Path, name: &str, payload: &[u8]) -> Artifact {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let layer = module_with_custom_section("big", payload);
    let layer_desc = write_blob(dir, "application/wasm", &layer);
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip1",
        "layerDigests": [layer_desc["digest"]],
    });
    let config_desc = write_blob(
        dir,
        "application/vnd.wasm.config.v0+json",
        &serde_json::to_vec(&config).unwrap(),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    });
    let mut manifest_desc = write_blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    manifest_desc["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": name });
    let index = serde_json::json!({ "schemaVersion": 2, "manifests": [manifest_desc] });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    Artifact {
        layout: dir.to_path_buf(),
        name: name.to_owned(),
        manifest_digest: manifest_desc["digest"].as_str().unwrap().to_owned(),
        layer_digest: layer_desc["digest"].as_str().unwrap().to_owned(),
        layer_size: u64::try_from(layer.len()).unwrap(),
    }
}

/// A small artifact `app:1`, its own per `seed`.
fn small_artifact(ctx: &TestContext, seed: u64) -> Artifact {
    write_artifact(
        &ctx.path().join(format!("layout-{seed}")),
        "app:1",
        &noise(64 * 1024, seed),
    )
}

/// `kiln` with no registry credentials but those a test sets: none from the
/// environment, and an empty Docker config.
fn kiln(ctx: &TestContext) -> Command {
    let docker_config = ctx.path().join("docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    let mut cmd = ctx.kiln();
    cmd.env("DOCKER_CONFIG", docker_config)
        .env_remove("KILN_REGISTRY_USERNAME")
        .env_remove("KILN_REGISTRY_PASSWORD")
        .env_remove("KILN_INSECURE_REGISTRY")
        .env_remove("GITHUB_TOKEN")
        .env_remove("CI_REGISTRY")
        .env_remove("SSL_CERT_FILE");
    cmd
}

/// `kiln push SOURCE HOST/REPO_TAG --insecure-registry HOST EXTRA...`
fn push_command(ctx: &TestContext, artifact: &Artifact, host: &str, repo_tag: &str) -> Command {
    let mut cmd = kiln(ctx);
    cmd.arg("push")
        .arg(artifact.source())
        .arg(format!("{host}/{repo_tag}"))
        .args(["--insecure-registry", host]);
    cmd
}

/// Runs `cmd` to its end, or kills it and panics after [`RUN_LIMIT`].
fn run_bounded(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(child)
}

/// Waits for `child` (stdout and stderr piped), or kills it and panics after
/// [`RUN_LIMIT`].
fn wait_bounded(mut child: Child) -> Output {
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kiln did not finish within {RUN_LIMIT:?}:\n--- stderr\n{}",
                String::from_utf8_lossy(&err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `tests/peers/faulty_proxy.py` in front of a registry. Dropping it kills it.
#[derive(Debug)]
struct Proxy {
    child: Child,
    port: u16,
    /// Holds the proxy's log (its stderr).
    dir: tempfile::TempDir,
}

impl Proxy {
    /// Starts the proxy in front of `upstream` with `faults` (`--fail-uploads N`,
    /// `--delay S`) and waits for the port it listens on.
    fn start(upstream: &Registry, faults: &[&str]) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("proxy.log")).unwrap();
        let mut child = Command::new(peer_python())
            .arg(repo_root().join("tests/peers/faulty_proxy.py"))
            .args(["--upstream", &upstream.host(), "--port", "0"])
            .args(faults)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn tests/peers/faulty_proxy.py");
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|port| port.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "faulty_proxy.py printed {line:?}, not `PORT <port>`:\n{}",
                std::fs::read_to_string(dir.path().join("proxy.log")).unwrap_or_default()
            );
        };
        Proxy { child, port, dir }
    }

    /// `127.0.0.1:PORT`
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// One line per request: `METHOD PATH -> STATUS [(note)]`.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The most bytes any upload in progress to `repo` has written to the registry's
/// storage (distribution keeps them in `_uploads/<uuid>/data` until committed).
fn upload_progress(registry: &Registry, repo: &str) -> u64 {
    let uploads = registry
        .storage()
        .join("docker/registry/v2/repositories")
        .join(repo)
        .join("_uploads");
    std::fs::read_dir(uploads)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.path().join("data").metadata().ok())
        .map(|meta| meta.len())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_registry_killed_mid_upload_fails_the_push_and_leaves_no_tag() {
    let ctx = TestContext::new();
    let mut registry = Registry::start(Mode::Plain);
    let host = registry.host();
    let artifact = write_artifact(
        &ctx.path().join("layout"),
        "big:1",
        &noise(64 * 1024 * 1024, 1),
    );

    let child = push_command(&ctx, &artifact, &host, "acme/big:1")
        .args(["--registry-retries", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Some(child);
    // Kill the registry once the layer's upload has written its first MiB (the config
    // blob is far smaller, so this is the layer), long before its 64 MiB are in.
    let deadline = Instant::now() + RUN_LIMIT;
    while upload_progress(&registry, "acme/big") < 1024 * 1024 {
        let running = child.as_mut().unwrap().try_wait().unwrap().is_none();
        if !running || Instant::now() > deadline {
            let out = wait_bounded(child.take().unwrap());
            panic!(
                "the push ended (or stalled) before the layer's upload was seen in storage:\n\
                 --- stderr\n{}\n--- registry\n{}",
                stderr(&out),
                registry.log()
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    registry.kill();
    let out = wait_bounded(child.take().unwrap());

    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: Failed to push the artifact to `{host}/acme/"
        )) && err.contains(&format!("\n  Caused by: Failed to upload blob on {host}\n")),
        "the error should name the failed operation and the registry:\n{err}"
    );
    assert!(err.contains("\nhint: "), "no hint:\n{err}");
    assert!(
        !registry.tag_exists("acme/big", "1"),
        "a push cut off mid-upload left the tag"
    );
    assert!(
        !registry.blob_exists(&artifact.layer_digest),
        "a layer cut off mid-upload was committed"
    );

    registry.restart();
    let out =
        run_bounded(push_command(&ctx, &artifact, &host, "acme/big:1").args(["--output", "json"]));
    assert_success(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["digest"], artifact.manifest_digest.as_str());
    // The config was committed before the cut; the layer was not, so it is sent whole.
    assert_eq!(
        summary["bytes_sent"],
        artifact.layer_size,
        "{}",
        stdout(&out)
    );
    assert_eq!(
        registry.tag_digest("acme/big", "1").as_deref(),
        Some(artifact.manifest_digest.as_str()),
        "the registry's tag does not point at the local manifest"
    );
    assert!(registry.blob_exists(&artifact.layer_digest));

    // What the output said about the cut-off upload must be true. Checked last, so that
    // the storage is checked whatever the output says, and in one report.
    let mut wrong = Vec::new();
    let full_size = kiln::summary::human_size(artifact.layer_size);
    let claim = format!("failed after {full_size} ");
    if let Some(line) = err.lines().find(|line| line.contains(&claim)) {
        wrong.push(format!(
            "the progress line claims the whole layer ({full_size}) was sent: {line:?}"
        ));
    }
    if err.contains("the registry's answer is above") {
        wrong.push(
            "the hint points at the registry's answer, but the registry was killed and \
             never answered"
                .to_owned(),
        );
    }
    assert!(wrong.is_empty(), "{}:\n{err}", wrong.join("\n"));
}

#[test]
fn a_500_on_a_blob_upload_is_retried_and_the_push_succeeds() {
    let ctx = TestContext::new();
    let registry = Registry::start(Mode::Plain);
    let proxy = Proxy::start(&registry, &["--fail-uploads", "1"]);
    let host = proxy.host();
    // 10 MiB: the layer goes up in three chunks, which the registry checks whole
    // against its digest.
    let artifact = write_artifact(&ctx.path().join("layout-2"), "app:1", &noise(10 << 20, 2));

    let out = run_bounded(&mut push_command(&ctx, &artifact, &host, "acme/app:1"));

    assert_success(&out);
    let log = proxy.log();
    assert_eq!(
        log.matches("-> 500 (injected)").count(),
        1,
        "the proxy should have failed exactly one upload request:\n{log}"
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("upload blob on {host} failed"))
            && err.contains("injected upload failure 1 of 1")
            && err.contains("retry 1 of 4"),
        "no retry warning naming the operation and the registry's error:\n{err}"
    );
    assert_eq!(
        registry.tag_digest("acme/app", "1").as_deref(),
        Some(artifact.manifest_digest.as_str())
    );
    assert!(registry.blob_exists(&artifact.layer_digest));
}

#[test]
fn a_500_on_a_blob_upload_fails_the_push_when_retries_are_off() {
    let ctx = TestContext::new();
    let registry = Registry::start(Mode::Plain);
    let proxy = Proxy::start(&registry, &["--fail-uploads", "1"]);
    let host = proxy.host();
    let artifact = small_artifact(&ctx, 3);

    let out = run_bounded(
        push_command(&ctx, &artifact, &host, "acme/app:1").args(["--registry-retries", "0"]),
    );

    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: Failed to push the artifact to `{host}/acme/"
        )) && err.contains(&format!("\n  Caused by: Failed to upload blob on {host}\n")),
        "the error should name the failed operation and the registry:\n{err}"
    );
    assert!(
        err.contains("code: 500") && err.contains("injected upload failure 1 of 1"),
        "the error should carry the registry's answer:\n{err}"
    );
    assert!(!err.contains("retry"), "retried with retries off:\n{err}");
    assert!(!registry.tag_exists("acme/app", "1"));
}

#[test]
fn a_registry_slower_than_the_timeout_fails_the_push_in_bounded_time() {
    let ctx = TestContext::new();
    let registry = Registry::start(Mode::Plain);
    let proxy = Proxy::start(&registry, &["--delay", "3"]);
    let host = proxy.host();
    let artifact = small_artifact(&ctx, 4);

    let started = Instant::now();
    let out = run_bounded(push_command(&ctx, &artifact, &host, "acme/app:1").args([
        "--registry-timeout",
        "1",
        "--registry-retries",
        "1",
    ]));
    let elapsed = started.elapsed();

    assert_exit(&out, 1);
    // A bound against waiting on the slow registry, not a performance target: two
    // 1 s timeouts and one backoff need about 3 s; the registry answers after 3 s each.
    assert!(
        elapsed < Duration::from_secs(30),
        "the timeout did not bound the push: {elapsed:?}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("retry 1 of 1"),
        "a timeout should be retried:\n{err}"
    );
    assert!(
        err.contains(&format!("Failed to authenticate on {host}")),
        "the error should name the first request, which timed out:\n{err}"
    );
    assert!(
        err.contains(&format!("hint: check that {host} is reachable")),
        "the hint should point at the registry's reachability:\n{err}"
    );
    assert!(!registry.tag_exists("acme/app", "1"));
}

#[test]
fn a_wrong_password_fails_at_once_naming_its_source() {
    let ctx = TestContext::new();
    let registry = Registry::start(Mode::basic_auth("u", "p"));
    let host = registry.host();
    let artifact = small_artifact(&ctx, 5);
    let wrong = "not-the-password-5f3a";

    // This registry speaks plain HTTP: credentials are not sent unless allowed.
    let out = run_bounded(
        push_command(&ctx, &artifact, &host, "acme/app:1")
            .env("KILN_REGISTRY_USERNAME", "u")
            .env("KILN_REGISTRY_PASSWORD", "p"),
    );
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("over plain HTTP"), "{err}");
    assert!(err.contains("--allow-insecure-auth"), "{err}");
    assert!(!registry.tag_exists("acme/app", "1"));

    let out = run_bounded(
        push_command(&ctx, &artifact, &host, "acme/app:1")
            .env("KILN_ALLOW_INSECURE_AUTH", "1")
            .env("KILN_REGISTRY_USERNAME", "u")
            .env("KILN_REGISTRY_PASSWORD", wrong),
    );

    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "\n  Caused by: {host} refused the credentials from"
        )) && err.contains("KILN_REGISTRY_USERNAME"),
        "the error should name the registry and the credential source:\n{err}"
    );
    assert!(err.contains("\nhint: "), "no hint:\n{err}");
    assert!(!err.contains("retry"), "a refusal was retried:\n{err}");
    assert!(
        !err.contains(wrong),
        "the password reached the output:\n{err}"
    );
    assert!(!registry.tag_exists("acme/app", "1"));

    let out = run_bounded(
        push_command(&ctx, &artifact, &host, "acme/app:1")
            .env("KILN_ALLOW_INSECURE_AUTH", "1")
            .env("KILN_REGISTRY_USERNAME", "u")
            .env("KILN_REGISTRY_PASSWORD", "p"),
    );
    assert_success(&out);
    assert_eq!(
        registry.tag_digest("acme/app", "1").as_deref(),
        Some(artifact.manifest_digest.as_str())
    );
}
