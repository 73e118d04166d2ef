//! The plan is the program: `kiln build --dry-run --output json` lists the steps a build
//! will run, and the summary of the real build lists the same steps, in the same order,
//! skipped where the plan said and for the reason it gave. Checked for a Rust and a
//! Python fixture, without and with `--push` and a cache, and for a no-op rebuild.

mod common;

use common::TestContext;
use common::registry::{Mode, Registry};

/// `(stage, why it is skipped)` of each step, as the plan or the summary lists them.
type Steps = Vec<(String, Option<String>)>;

/// `kiln build PROJECT --output json FLAGS` (caching on when `--cache` is among them).
fn build(ctx: &TestContext, project: &str, flags: &[&str]) -> serde_json::Value {
    let mut cmd = ctx.kiln();
    if flags.contains(&"--cache") {
        cmd.env_remove("KILN_NO_CACHE");
    }
    let out = cmd
        .args(["build", project, "--output", "json"])
        .args(flags)
        .output()
        .unwrap();
    common::assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn planned(ctx: &TestContext, project: &str, flags: &[&str]) -> Steps {
    let mut flags = flags.to_vec();
    flags.push("--dry-run");
    let plan = build(ctx, project, &flags);
    common::assert_matches_schema(&plan, "plan.schema.json");
    steps(&plan["steps"])
}

fn ran(ctx: &TestContext, project: &str, flags: &[&str]) -> (Steps, serde_json::Value) {
    let summary = build(ctx, project, flags);
    common::assert_valid_summary(&summary);
    (steps(&summary["stages"]), summary)
}

fn steps(list: &serde_json::Value) -> Steps {
    list.as_array()
        .unwrap()
        .iter()
        .map(|step| {
            (
                step["stage"].as_str().unwrap().to_string(),
                step["skipped"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The stages that run, in order.
fn running(steps: &Steps) -> Vec<&str> {
    steps
        .iter()
        .filter(|(_, skipped)| skipped.is_none())
        .map(|(stage, _)| stage.as_str())
        .collect()
}

const EVERY_STAGE: [&str; 10] = [
    "detect", "restore", "build", "package", "store", "push", "sign", "attest", "save", "summary",
];

/// Plans, builds and plans again (a no-op) `fixture`, checking plan and summary agree.
fn check(fixture: &str, push: bool) {
    let registry = push.then(|| Registry::start(Mode::Plain));
    let ctx = TestContext::new();
    let project = ctx.fixture(fixture);
    let project = project.to_str().unwrap();
    let flags: Vec<String> = match &registry {
        Some(registry) => vec![
            "--push".into(),
            format!("{}/acme/{fixture}", registry.host()),
            "--insecure-registry".into(),
            registry.host(),
            "--cache".into(),
            ctx.path().join("cache").display().to_string(),
        ],
        None => Vec::new(),
    };
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    let plan = planned(&ctx, project, &flags);
    let (summary, _) = ran(&ctx, project, &flags);
    let names: Vec<&str> = plan.iter().map(|(stage, _)| stage.as_str()).collect();
    assert_eq!(
        names, EVERY_STAGE,
        "every stage is listed, in the order it runs"
    );
    assert_eq!(summary, plan, "the summary lists the plan's steps");
    let expected_running: Vec<&str> = if push {
        EVERY_STAGE.to_vec()
    } else {
        vec![
            "detect", "build", "package", "store", "sign", "attest", "summary",
        ]
    };
    assert_eq!(running(&plan), expected_running);

    // Unchanged inputs: nothing is built, and both say so.
    let plan = planned(&ctx, project, &flags);
    let (summary, document) = ran(&ctx, project, &flags);
    assert_eq!(summary, plan);
    assert_eq!(document["skipped"], true);
    let expected_running = ["detect", "store", "sign", "attest", "summary"];
    assert_eq!(running(&plan), expected_running);
    if push {
        let (_, why) = &plan[5];
        assert_eq!(
            why.as_deref(),
            Some("the registry already has it under this tag")
        );
    }
}

#[test]
fn rust_plan_and_summary_agree() {
    check("rust-bin", false);
}

#[test]
fn rust_plan_and_summary_agree_with_push_and_cache() {
    check("rust-bin", true);
}

#[test]
fn python_plan_and_summary_agree() {
    check("python-requirements", false);
}

#[test]
fn python_plan_and_summary_agree_with_push_and_cache() {
    check("python-requirements", true);
}
