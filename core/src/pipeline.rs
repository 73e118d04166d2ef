//! Runs a computed [`Plan`]: build → package → store, and returns the [`Summary`].
//!
//! Detection already ran while the plan was computed; its time is reported here so
//! the summary shows every stage.

use std::time::{Duration, Instant};

use crate::plan::{Plan, ToolchainPlan};
use crate::project::ProjectKind;
use crate::reporter::{Reporter, Stage};
use crate::stages::build::{self, Built};
use crate::stages::{package, store};
use crate::summary::{
    ArtifactSummary, BuildSummary, Fact, ProjectSummary, SCHEMA_VERSION, StageTiming, Summary,
};

/// Runs every stage after detection.
pub async fn build(
    plan: &Plan,
    detect_time: Duration,
    reporter: &dyn Reporter,
) -> anyhow::Result<Summary> {
    let mut timings = vec![StageTiming {
        stage: Stage::Detect,
        seconds: detect_time.as_secs_f64(),
    }];
    let mut timed = |stage: Stage, started: Instant| {
        let elapsed = started.elapsed();
        reporter.stage_finished(stage, elapsed);
        timings.push(StageTiming {
            stage,
            seconds: elapsed.as_secs_f64(),
        });
    };

    keep_out_of_git(&plan.project.root.join(".kiln"));

    reporter.stage_started(Stage::Build);
    let started = Instant::now();
    let built = build_project(plan, reporter).await?;
    timed(Stage::Build, started);

    let mut project = plan.project.clone();
    if project.version.is_none() {
        project.version = built.version.clone();
    }
    let reference = crate::plan::reference(plan.tag.as_deref(), &project)?;

    reporter.stage_started(Stage::Package);
    let started = Instant::now();
    let artifact = package::run(package::PackageRequest {
        built: built.clone(),
        name: project.name.clone(),
        version: project.version.clone(),
        created: plan.source.created.clone(),
        revision: plan.source.revision.clone(),
        source: plan.source.url.clone(),
    })
    .await?;
    timed(Stage::Package, started);

    reporter.stage_started(Stage::Store);
    let started = Instant::now();
    let stored = store::run(store::StoreRequest {
        artifact: &artifact,
        layout: plan.layout.clone(),
        reference,
    })
    .await?;
    timed(Stage::Store, started);

    Ok(Summary {
        schema_version: SCHEMA_VERSION,
        kiln_version: env!("CARGO_PKG_VERSION").to_string(),
        project: ProjectSummary {
            name: project.name,
            version: project.version,
            language: project.kind.language().to_string(),
            path: project.root,
            entry: plan.entry(),
        },
        build: BuildSummary {
            toolchain: built.toolchain.clone(),
            wasm_kind: match artifact.kind {
                build::WasmKind::Module => "module".into(),
                build::WasmKind::Component => "component".into(),
            },
            facts: built
                .facts
                .iter()
                .map(|(name, value)| Fact {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        },
        artifact: ArtifactSummary {
            digest: artifact.manifest_digest.clone(),
            layer_digest: artifact.layer_digest.clone(),
            size: artifact.layer_size,
            os: artifact.config.os.clone(),
            oci_reference: format!("oci:{}:{}", stored.layout.display(), stored.reference),
            layout: stored.layout,
            reference: stored.reference,
            created: artifact.config.created.clone(),
        },
        stages: timings,
    })
}

async fn build_project(plan: &Plan, reporter: &dyn Reporter) -> anyhow::Result<Built> {
    Ok(match (&plan.project.kind, &plan.toolchain) {
        (ProjectKind::Rust(rust), ToolchainPlan::Rust { candidates }) => {
            build::rust::build(rust, candidates, reporter).await?
        }
        (ProjectKind::Python(py), ToolchainPlan::Python(toolchain)) => {
            let work_dir = plan.work_dir.join("python");
            build::python::build(&plan.project, py, toolchain, &work_dir, reporter).await?
        }
        (kind, toolchain) => unreachable!(
            "plan pairs a {} project with a {toolchain:?} toolchain",
            kind.language()
        ),
    })
}

/// kiln's scratch and output directory is never source: like cargo's `target/`, it
/// ignores itself, so nobody commits a layout by accident.
fn keep_out_of_git(kiln_dir: &std::path::Path) {
    let ignore = kiln_dir.join(".gitignore");
    if !ignore.exists() {
        let written = std::fs::create_dir_all(kiln_dir).and_then(|()| {
            std::fs::write(&ignore, "# Written by kiln: build output, not source.\n*\n")
        });
        if let Err(err) = written {
            tracing::debug!(path = %ignore.display(), %err, "could not write .gitignore");
        }
    }
}
