//! `kiln build`: plan, then run the pipeline (or print the plan with `--dry-run`).

use kiln_cli::{BuildArgs, OutputFormat, ReportArgs, SigningArgs};

use super::{Printer, cache_options, registry_options};
use crate::env::Env;
use crate::error::Error;
use crate::plan::{BuildOptions, Plan, Publishing};
use crate::sign::keyring::{KeylessMode, SigningOptions};

pub async fn run(
    args: BuildArgs,
    env: Env,
    output: OutputFormat,
    printer: &Printer,
) -> Result<u8, Error> {
    let settings = super::settings(&args.project, env)?;
    let options = BuildOptions {
        publishing: if args.no_publish {
            Publishing::BuildOnly
        } else {
            Publishing::Both
        },
        push: args.push.clone(),
        force: args.force,
        require_isolation: args.require_isolation,
        registry: registry_options(
            &args.registry,
            &settings.env,
            args.push.as_deref().or(args.cache.cache.as_deref()),
        ),
        signing: signing_options(&args.signing),
        cache: cache_options(&args.cache, &settings.home, &settings.env)?,
        summary_file: args.report.summary_file.clone(),
        post: post(&args.report),
        dry_run: args.dry_run,
    };
    let plan = Plan::compute(settings, options, printer).await?;
    if args.dry_run {
        super::plan::show(&plan, output, printer);
        return Ok(0);
    }
    run_plan(plan, output, printer).await
}

/// Runs the pipeline and prints its summary.
pub(super) async fn run_plan(
    plan: Plan,
    output: OutputFormat,
    printer: &Printer,
) -> Result<u8, Error> {
    let summary = crate::pipeline::run(plan, printer).await?;
    printer.info(&summary.to_string());
    super::data(output, printer, &summary);
    Ok(0)
}

/// `--key`, `--keyless`/`--no-keyless`, Fulcio and Rekor.
pub(super) fn signing_options(args: &SigningArgs) -> SigningOptions {
    SigningOptions {
        key: args.key.clone(),
        keyless: if args.keyless {
            KeylessMode::Always
        } else if args.no_keyless {
            KeylessMode::Never
        } else {
            KeylessMode::Auto
        },
        fulcio_url: Some(args.fulcio_url.clone()),
        rekor_url: Some(args.rekor_url.clone()),
    }
}

/// Where the summary is posted; `--no-post` leaves out only comments and notes.
pub(super) fn post(args: &ReportArgs) -> crate::platform::Posting {
    crate::platform::Posting {
        platform: args.post.platform,
        comments: !args.no_post,
    }
}
