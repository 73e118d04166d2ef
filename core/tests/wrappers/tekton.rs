//! The Tekton Task.

use super::*;

#[test]
fn tekton_task_is_valid_v1_and_its_step_writes_the_results() {
    let ctx = TestContext::new();
    let root = repo_root();
    let task = root.join("tekton/task/kiln-build/0.1/kiln-build.yaml");
    let out = Command::new(peer_tool("check-jsonschema"))
        .arg("--schemafile")
        .arg(root.join("tests/wrappers/tekton-v1.schema.json"))
        .arg(&task)
        .arg(root.join("tekton/task/kiln-build/0.1/tests/run.yaml"))
        .output()
        .unwrap();
    assert_ok("check-jsonschema (Tekton v1)", &out);

    // The step, with the params of tests/run.yaml, a temp dir for the source
    // workspace and another for the results.
    let source = ctx.path().join("workspace/source");
    std::fs::create_dir_all(&source).unwrap();
    let project = ctx.fixture("rust-bin");
    copy_dir(&project, &source.join("rust-bin"));
    let cache = ctx.path().join("workspace/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let results = ctx.path().join("tekton-results");
    std::fs::create_dir_all(&results).unwrap();
    // Chains signs what was pushed: the step pushes to a real registry.
    let registry = Registry::start(Mode::Plain);
    let host = registry.host();
    let params = serde_json::json!({
        "PATH": "rust-bin",
        "FORCE": "true",
        "PUSH": format!("{host}/acme/tekton"),
        "INSECURE_REGISTRY": host,
    });
    let out = isolated(&ctx, peer_python())
        .arg(root.join("tests/wrappers/run_tekton_step.py"))
        .arg(&task)
        .arg(params.to_string())
        .arg(serde_json::json!({"source": source, "cache": cache}).to_string())
        .env("KILN_TEKTON_RESULTS", &results)
        .env("PATH", path_with(&[&kiln_dir()]))
        .output()
        .unwrap();
    assert_ok("the Tekton step", &out);
    let read = |name: &str| {
        std::fs::read_to_string(results.join(name))
            .unwrap_or_else(|_| panic!("no result {name}:\n{}", stderr(&out)))
    };
    let digest = read("IMAGE_DIGEST");
    assert!(
        digest.starts_with("sha256:") && digest.trim().len() == 71,
        "{digest}"
    );
    assert_eq!(read("IMAGE_URL"), format!("{host}/acme/tekton:0.3.1"));
    assert_eq!(
        registry.tag_digest("acme/tekton", "0.3.1").as_deref(),
        Some(digest.as_str())
    );
    assert!(read("SBOM_DIGEST").starts_with("sha256:"));
    read("CACHE_HIT");
    // The digest is the artifact's, stored in the project's layout in the workspace.
    let index = std::fs::read_to_string(source.join("rust-bin/.kiln/oci/index.json")).unwrap();
    assert!(index.contains(digest.trim()), "{digest} not in {index}");
    // Results are small: Tekton keeps 4 KB per container.
    let total: u64 = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total < 4096, "{total} bytes of results");
}
