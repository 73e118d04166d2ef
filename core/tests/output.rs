//! What people read, asserted whole: the build's summary and progress lines, `kiln verify`'s
//! verdicts, and a usage error. Snapshots (insta) after filters for what changes from run
//! to run: temporary paths, digests, times, sizes and the toolchain's version.

mod common;

use common::{TestContext, assert_exit, assert_success, stderr};

/// `insta` settings that replace what differs between runs and machines.
fn filters(ctx: &TestContext) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    let temp = ctx.path().canonicalize().unwrap();
    settings.add_filter(&regex_escape(temp.to_str().unwrap()), "[TEMP]");
    settings.add_filter(&regex_escape(ctx.path().to_str().unwrap()), "[TEMP]");
    let kiln_home = common::shared_dir("kiln-home");
    settings.add_filter(&regex_escape(kiln_home.to_str().unwrap()), "[KILN_HOME]");
    settings.add_filter(r"sha256([:-])[0-9a-f]{64}", "sha256${1}[DIGEST]");
    settings.add_filter(r"\b\d+(\.\d+)?s\b", "[TIME]");
    settings.add_filter(r"\b\d+(\.\d+)? ?[kMG]?B\b", "[SIZE]");
    settings.add_filter(r"rustc \d+\.\d+\.\d+[^,)]*\)", "rustc [VERSION])");
    settings.add_filter(r"created    \S+", "created    [TIME]");
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

#[test]
fn build_summary_and_progress() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let out = ctx.run(&["build", project.to_str().unwrap()]);
    assert_success(&out);
    filters(&ctx).bind(|| insta::assert_snapshot!(stderr(&out)));
}

#[test]
fn verify_verdicts() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    assert_success(&ctx.run(&["build", project.to_str().unwrap()]));
    let verified = ctx.run(&["verify", project.to_str().unwrap(), "--require-sbom"]);
    assert_success(&verified);
    let denied = ctx.run(&["verify", project.to_str().unwrap(), "--deny-license", "MIT"]);
    assert_exit(&denied, 1);
    filters(&ctx).bind(|| {
        insta::assert_snapshot!("verified", stderr(&verified));
        insta::assert_snapshot!("denied", stderr(&denied));
    });
}

/// Every JSON document matches the schema committed for it.
#[test]
fn printed_documents_match_their_schemas() {
    let ctx = TestContext::new();
    let project = ctx.fixture("rust-bin");
    let project = project.to_str().unwrap();
    let json = |args: &[&str]| -> serde_json::Value {
        let out = ctx.run(args);
        assert_success(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let plan = json(&["plan", project, "--output", "json"]);
    common::assert_matches_schema(&plan, "plan.schema.json");
    let summary = json(&["build", project, "--output", "json"]);
    common::assert_matches_schema(&summary, "summary.schema.json");
    let verified = json(&["verify", project, "--output", "json"]);
    common::assert_matches_schema(&verified, "verify.schema.json");
    let keys = json(&["cache", "key", project, "--output", "json"]);
    common::assert_matches_schema(&keys, "cache-keys.schema.json");
}

#[test]
fn a_usage_error_exits_2() {
    let ctx = TestContext::new();
    let out = ctx.run(&["build", "--no-such-flag"]);
    assert_exit(&out, 2);
    insta::assert_snapshot!(stderr(&out));
}
