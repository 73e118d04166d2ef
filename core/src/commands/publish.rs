//! `kiln publish`: the second job of a split pipeline. It recomputes the inputs digest
//! of the checked-out sources (detection and hashing only: no build script, no pip, no
//! componentize-py), finds the artifact `kiln build --no-publish` stored for exactly
//! those inputs, and pushes, signs and attests it with the SBOM stored beside it.

use kiln_cli::{OutputFormat, PublishArgs};

use super::build::{post, run_plan, signing_options};
use super::{Printer, registry_options};
use crate::cache::CacheOptions;
use crate::env::Env;
use crate::error::Error;
use crate::plan::{BuildOptions, Plan, Publishing};

pub async fn run(
    args: PublishArgs,
    env: Env,
    output: OutputFormat,
    printer: &Printer,
) -> Result<u8, Error> {
    let settings = super::settings(&args.project, env)?;
    let options = BuildOptions {
        publishing: Publishing::PublishOnly,
        push: args.push.clone(),
        registry: registry_options(&args.registry, &settings.env, args.push.as_deref()),
        signing: signing_options(&args.signing),
        // Caches belong to the build job.
        cache: CacheOptions::default(),
        summary_file: args.report.summary_file.clone(),
        post: post(&args.report),
        ..BuildOptions::default()
    };
    let plan = Plan::compute(settings, options, printer).await?;
    run_plan(plan, output, printer).await
}
