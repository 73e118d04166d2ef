//! A pipeline split in two jobs: `kiln build --no-publish` runs the project's code and
//! reads no signing secret; `kiln publish` runs none of it and signs only the artifact
//! stored for exactly the sources it has checked out.

mod common;

use common::registry::{Mode, Registry};
use common::{TestContext, assert_exit, assert_success, stderr};

fn skipped(summary: &serde_json::Value) -> Vec<(String, Option<String>)> {
    summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["skipped"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn build_without_secrets_then_publish_without_project_code() {
    let registry = Registry::start(Mode::Plain);
    let host = registry.host();
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let keys = ctx.path().join("keys");
    assert_success(&ctx.run(&["keygen", "--output-dir", keys.to_str().unwrap()]));

    // The build job: a signing key that cannot be read proves none is read.
    let out = ctx
        .kiln()
        .args(["build", project.to_str().unwrap(), "--no-publish"])
        .args(["--output", "json"])
        .env("KILN_SIGNING_KEY", "/nonexistent/cosign.key")
        .output()
        .unwrap();
    assert_success(&out);
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    common::assert_valid_summary(&built);
    assert!(built["signature"].is_null() && built["attestation"].is_null());
    for (stage, why) in skipped(&built) {
        match stage.as_str() {
            "push" | "sign" => assert!(why.unwrap().contains("--no-publish")),
            "build" | "package" | "store" | "attest" => assert_eq!(why, None, "{stage}"),
            _ => {}
        }
    }
    let digest = built["artifact"]["digest"].as_str().unwrap();
    let tag = |suffix: &str| format!("{}.{suffix}", digest.replace(':', "-"));
    let layout = project.join(".kiln/oci");
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap();
    assert!(index.contains(&tag("sbom")), "{index}");
    assert!(!index.contains(&tag("sig")), "{index}");

    // The publish job: the same checkout, the layout handed over, the release key.
    let dest = format!("{host}/acme/split");
    let key = keys.join("cosign.key");
    let publish = |extra: &[&str]| {
        ctx.kiln()
            .args(["publish", project.to_str().unwrap(), "--output", "json"])
            .args(["--push", &dest, "--insecure-registry", &host])
            .args(["--key", key.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = publish(&[]);
    assert_success(&out);
    let published: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    common::assert_valid_summary(&published);
    assert_eq!(published["artifact"]["digest"], digest);
    for (stage, why) in skipped(&published) {
        if matches!(stage.as_str(), "restore" | "build" | "package" | "save") {
            assert_eq!(why.as_deref(), Some("`kiln publish` runs no project code"));
        }
    }
    // The SBOM attested is the one the build job listed.
    assert_eq!(
        published["attestation"]["components"],
        built_components(&project)
    );
    assert_eq!(
        registry.tag_digest("acme/split", "0.3.1").as_deref(),
        Some(digest)
    );
    let public = keys.join("cosign.pub");
    let verified = ctx.run(&[
        "verify",
        &format!("{dest}:0.3.1"),
        "--key",
        public.to_str().unwrap(),
        "--require-sbom",
        "--insecure-registry",
        &host,
    ]);
    assert_success(&verified);

    // Sources that differ from what was built: refused, nothing signed.
    let main = project.join("src/main.rs");
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{source}\n// not what was built\n")).unwrap();
    let out = publish(&[]);
    assert_exit(&out, 1);
    let message = stderr(&out);
    assert!(
        message.contains("holds no artifact built from these sources")
            && message.contains("records inputs"),
        "{message}"
    );
}

/// The number of components in the SBOM the build job left next to the build.
fn built_components(project: &std::path::Path) -> usize {
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join(".kiln/build/sbom.cdx.json")).unwrap())
            .unwrap();
    sbom["components"].as_array().unwrap().len()
}
