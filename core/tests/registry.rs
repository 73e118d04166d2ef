//! Pushing to and pulling from a real registry (distribution, started by the harness),
//! read back by skopeo and oras; no-op rebuilds.

mod common;

use std::path::Path;

use common::registry::{Mode, Registry, oras_fetch, skopeo_inspect_raw};
use common::{TestContext, assert_exit, assert_success, stderr, stdout};

fn push_args<'a>(registry_host: &'a str, dest: &'a str) -> Vec<&'a str> {
    vec!["--push", dest, "--insecure-registry", registry_host]
}

#[test]
fn push_pull_round_trip_is_byte_identical_and_read_by_peers() {
    let registry = Registry::start(Mode::Plain);
    let host = registry.host();
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let dest = format!("{host}/acme/rust-bin");
    let summary = ctx.build(&project, &push_args(&host, &dest));
    let push = &summary["push"];
    let digest = summary["artifact"]["digest"].as_str().unwrap();
    assert_eq!(push["digest"], digest);
    assert_eq!(
        push["reference"],
        format!("{host}/acme/rust-bin:0.3.1@{digest}").as_str()
    );
    assert!(push["bytes_sent"].as_u64().unwrap() > 100_000);
    assert_eq!(summary["skipped"], false);

    // The registry holds exactly the manifest kiln stored locally.
    let layout = Path::new(summary["artifact"]["layout"].as_str().unwrap());
    let local_manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(common::blob(layout, digest)).unwrap()).unwrap();
    assert_eq!(
        registry.tag_digest("acme/rust-bin", "0.3.1").as_deref(),
        Some(digest)
    );
    assert_eq!(
        skopeo_inspect_raw(&registry, "acme/rust-bin:0.3.1"),
        local_manifest
    );
    let fetched = oras_fetch(&registry, "acme/rust-bin:0.3.1");
    assert_eq!(
        fetched["manifest"]["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(fetched["config"]["os"], "wasip1");
    assert_eq!(fetched["layer_sha256"], summary["artifact"]["layer_digest"]);

    // Pull into a fresh layout: every blob is byte-identical, and it runs.
    let pulled = ctx.path().join("pulled");
    let out = ctx.run(&[
        "pull",
        &format!("{host}/acme/rust-bin:0.3.1"),
        "--layout",
        pulled.to_str().unwrap(),
        "--insecure-registry",
        &host,
    ]);
    assert_success(&out);
    for blob in [
        digest,
        summary["artifact"]["layer_digest"].as_str().unwrap(),
        local_manifest["config"]["digest"].as_str().unwrap(),
    ] {
        assert_eq!(
            std::fs::read(common::blob(&pulled, blob)).unwrap(),
            std::fs::read(common::blob(layout, blob)).unwrap(),
            "{blob} differs after the round trip"
        );
    }
    let run = ctx.run(&[
        "run",
        &format!("oci:{}:acme/rust-bin:0.3.1", pulled.display()),
        "--",
        "pulled",
    ]);
    assert_success(&run);
    assert!(
        stdout(&run).starts_with("{\"args\":[\"pulled\"]"),
        "{}",
        stdout(&run)
    );

    // kiln push of the stored artifact under another tag sends no blob again.
    let out = ctx.run(&[
        "push",
        "rust-bin",
        &format!("{host}/acme/rust-bin:again"),
        "--insecure-registry",
        &host,
        "--output",
        "json",
    ]);
    assert_success(&out);
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pushed["bytes_sent"], 0, "{}", stderr(&out));
    assert_eq!(
        registry.tag_digest("acme/rust-bin", "again").as_deref(),
        Some(digest)
    );
}

#[test]
fn unchanged_inputs_skip_the_build_and_changed_sources_rebuild() {
    let registry = Registry::start(Mode::Plain);
    let host = registry.host();
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let dest = format!("{host}/acme/noop");
    let first = ctx.build(&project, &push_args(&host, &dest));
    assert_eq!(first["skipped"], false);

    // Same inputs: nothing built, nothing sent.
    let again = ctx.build(&project, &push_args(&host, &dest));
    assert_eq!(again["skipped"], true);
    assert_eq!(again["push"]["up_to_date"], true);
    assert_eq!(again["artifact"]["digest"], first["artifact"]["digest"]);
    assert_eq!(again["inputs_digest"], first["inputs_digest"]);
    // Every stage is listed; what a no-op need not do says why it was skipped, and the
    // store stage only tags what the registry already had.
    let skipped: Vec<(&str, Option<&str>)> = again["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["skipped"].as_str()))
        .collect();
    for (stage, why) in &skipped {
        let expected = match *stage {
            "restore" | "save" => Some("caching is off (--no-cache)"),
            "build" | "package" => {
                Some("inputs unchanged: an artifact with the same inputs is stored")
            }
            "push" => Some("the registry already has it under this tag"),
            _ => None,
        };
        assert_eq!(*why, expected, "{stage}: {skipped:?}");
    }
    // Its signature and attestation are the ones already there.
    assert_eq!(again["signature"]["reused"], true);
    assert_eq!(again["attestation"]["reused"], true);

    // Only the layout has it under that tag: no build; the registry gets the new tag,
    // and none of the blobs it already has.
    let other_tag = format!("{host}/acme/noop:candidate");
    let retagged = ctx.build(&project, &push_args(&host, &other_tag));
    assert_eq!(retagged["skipped"], true);
    assert_eq!(retagged["push"]["up_to_date"], false);
    assert_eq!(retagged["push"]["bytes_sent"], 0);
    assert_eq!(
        registry.tag_digest("acme/noop", "candidate").as_deref(),
        first["artifact"]["digest"].as_str()
    );

    // A changed source file changes the inputs: it is rebuilt and pushed.
    let main = project.join("src/main.rs");
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{source}\n// changed\n")).unwrap();
    let rebuilt = ctx.build(&project, &push_args(&host, &dest));
    assert_eq!(rebuilt["skipped"], false);
    assert_ne!(rebuilt["inputs_digest"], first["inputs_digest"]);
    assert_eq!(rebuilt["push"]["up_to_date"], false);

    // --force rebuilds whatever is stored.
    let forced = ctx.build(&project, &["--force"]);
    assert_eq!(forced["skipped"], false);
}

#[test]
fn basic_auth_from_docker_config_and_wrong_credentials() {
    let registry = Registry::start(Mode::basic_auth("kiln", "s3cret"));
    let host = registry.host();
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-lib-and-bin");
    let docker = ctx.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("kiln:s3cret");
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"http://{host}/v2/":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let dest = format!("{host}/acme/shout");
    let out = ctx
        .kiln()
        .args(["build", project.to_str().unwrap()])
        .args(push_args(&host, &dest))
        .arg("--allow-insecure-auth")
        .env("DOCKER_CONFIG", &docker)
        .output()
        .unwrap();
    assert_success(&out);
    assert!(registry.tag_exists("acme/shout", "0.1.0"));

    let wrong = ctx
        .kiln()
        .args(["push", "rust-lib-and-bin", &format!("{dest}:wrong")])
        .args(["--insecure-registry", &host, "--allow-insecure-auth"])
        .env("KILN_REGISTRY_USERNAME", "kiln")
        .env("KILN_REGISTRY_PASSWORD", "not-it")
        .output()
        .unwrap();
    assert_exit(&wrong, 1);
    let text = stderr(&wrong);
    assert!(
        text.contains("refused the credentials from KILN_REGISTRY_USERNAME/KILN_REGISTRY_PASSWORD"),
        "{text}"
    );
    assert!(text.contains("hint: "), "{text}");
    assert!(
        !text.contains("not-it"),
        "the password was printed:\n{text}"
    );
    assert!(!registry.tag_exists("acme/shout", "wrong"));
}

#[test]
fn tls_with_a_custom_ca() {
    let registry = Registry::start(Mode::Tls);
    let host = registry.host();
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-lib-and-bin");
    let dest = format!("{host}/acme/tls");
    // Without the CA the certificate is refused.
    let refused = ctx
        .kiln()
        .args(["build", project.to_str().unwrap(), "--push", &dest])
        .args(["--registry-retries", "0"])
        .output()
        .unwrap();
    assert_exit(&refused, 1);
    assert!(!registry.tag_exists("acme/tls", "0.1.0"));
    // With SSL_CERT_FILE it is trusted.
    let out = ctx
        .kiln()
        .args(["build", project.to_str().unwrap(), "--push", &dest])
        .env("SSL_CERT_FILE", registry.ca_cert().unwrap())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(registry.tag_exists("acme/tls", "0.1.0"));
}

/// Rewrites the artifact tagged `reference` in the OCI layout `layout` so that it claims
/// the inputs digest `inputs`, as anyone who can push to a tag could: the annotation is
/// not authenticated. Returns the planted manifest's digest.
fn plant_inputs(layout: &Path, reference: &str, inputs: &str) -> String {
    use sha2::Digest as _;
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
        .unwrap();
    let old = common::blob(layout, entry["digest"].as_str().unwrap());
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(old).unwrap()).unwrap();
    manifest["annotations"]["dev.kiln.inputs.digest"] = inputs.into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    std::fs::write(common::blob(layout, &digest), &bytes).unwrap();
    entry["digest"] = digest.clone().into();
    entry["size"] = bytes.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    digest
}

#[test]
fn a_planted_artifact_with_the_right_inputs_is_rebuilt_never_signed() {
    let registry = Registry::start(Mode::Plain);
    let host = registry.host();
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let dest = format!("{host}/acme/planted:1.0");
    let keys = ctx.path().join("release-keys");
    assert_success(&ctx.run(&["keygen", "--output-dir", keys.to_str().unwrap()]));
    let key = keys.join("cosign.key");
    let mut release = push_args(&host, &dest);
    release.extend(["--key", key.to_str().unwrap()]);

    // The inputs digest of the release build is computable by anyone with the commit.
    let mut dry = release.clone();
    dry.push("--dry-run");
    let plan = ctx.build(&project, &dry);
    let inputs = plan["inputs_digest"].as_str().unwrap().to_string();

    // The attacker builds something else and pushes it under the release tag, claiming
    // those inputs (with a signature of their own, by another key).
    let attacker = TestContext::new();
    let other = attacker.fixture("rust-features");
    let theirs = attacker.build(&other, &["--tag", "planted:1.0"]);
    let their_layout = Path::new(theirs["artifact"]["layout"].as_str().unwrap());
    let planted = plant_inputs(their_layout, "planted:1.0", &inputs);
    let out = common::registry::skopeo_copy_to(
        &registry,
        &format!("oci:{}:planted:1.0", their_layout.display()),
        "acme/planted:1.0",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        registry.tag_digest("acme/planted", "1.0").as_deref(),
        Some(planted.as_str())
    );

    // The release build finds it, cannot verify it, builds its own and signs only that.
    let out = ctx.run(
        &[
            &["build", project.to_str().unwrap(), "--output", "json"][..],
            &release,
        ]
        .concat(),
    );
    assert_success(&out);
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(built["skipped"], false);
    assert!(
        stderr(&out).contains("no signature by this signer verifies"),
        "{}",
        stderr(&out)
    );
    let ours = built["artifact"]["digest"].as_str().unwrap();
    assert_ne!(ours, planted);
    let planted_sig = format!("{}.sig", planted.replace(':', "-"));
    assert!(!registry.tag_exists("acme/planted", &planted_sig));

    // What the tag holds now verifies with the release key, and is kiln's own build.
    let public = keys.join("cosign.pub");
    let out = ctx.run(&[
        "verify",
        &dest,
        "--key",
        public.to_str().unwrap(),
        "--insecure-registry",
        &host,
        "--output",
        "json",
    ]);
    assert_success(&out);
    let verified: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verified["digest"], ours);
    assert_eq!(
        registry.tag_digest("acme/planted", "1.0").as_deref(),
        Some(ours)
    );

    // The same plant committed into the project's own layout is not reused either.
    let local = ctx.fixture("rust-features");
    let mut local_release = vec!["--key", key.to_str().unwrap(), "--tag", "planted:1.0"];
    let local_inputs =
        ctx.build(&local, &[&local_release[..], &["--dry-run"]].concat())["inputs_digest"]
            .as_str()
            .unwrap()
            .to_string();
    common::copy_dir(their_layout, &local.join(".kiln/oci"));
    plant_inputs(&local.join(".kiln/oci"), "planted:1.0", &local_inputs);
    local_release.extend(["--output", "json"]);
    let out = ctx.run(&[&["build", local.to_str().unwrap()][..], &local_release].concat());
    assert_success(&out);
    let rebuilt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rebuilt["skipped"], false, "{}", stderr(&out));
}
