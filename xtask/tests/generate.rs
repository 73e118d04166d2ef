//! The wrapper files hold exactly what the generator writes from `kiln build`'s flags,
//! so `cargo test --workspace` fails when a flag changes and they were not regenerated.

#[test]
fn generated_wrapper_files_are_current() {
    let root = xtask::repo_root();
    let generated = xtask::generate(&root).unwrap();
    let stale: Vec<String> = generated
        .iter()
        .filter(|f| !f.is_current())
        .map(|f| f.diff())
        .collect();
    assert!(
        stale.is_empty(),
        "generated wrapper files are out of date; run `cargo run -p xtask -- generate`:\n{}",
        stale.join("\n")
    );
}

#[test]
fn generated_wrapper_files_match_their_snapshots() {
    let root = xtask::repo_root();
    // The schemas are generated whole, and committed: the test above covers them.
    for file in xtask::generate(&root)
        .unwrap()
        .into_iter()
        .filter(|f| xtask::FILES.contains(&f.path.as_str()))
    {
        let name = file.path.replace(['/', '.'], "_");
        insta::assert_snapshot!(name, file.expected);
    }
}

#[test]
fn check_mode_fails_with_a_diff_on_drift() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["generate", "--check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And the diff a drift prints is a unified diff of the file.
    let drifted = xtask::Generated {
        path: "action/action.yml".into(),
        current: "inputs:\n  old:\n".into(),
        expected: "inputs:\n  new:\n".into(),
    };
    assert_eq!(
        drifted.diff(),
        "--- a/action/action.yml\n+++ b/action/action.yml\n@@ -1,2 +1,2 @@\n inputs:\n-  old:\n+  new:\n"
    );
}
