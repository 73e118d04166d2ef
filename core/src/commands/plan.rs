//! `kiln plan`: what `kiln build` would do, computed and printed, nothing run.

use kiln_cli::{OutputFormat, ProjectArgs};

use super::Printer;
use crate::cache::{CacheLocation, CacheOptions};
use crate::env::Env;
use crate::error::Error;
use crate::plan::{BuildOptions, Plan};

pub async fn run(
    args: ProjectArgs,
    env: Env,
    output: OutputFormat,
    printer: &Printer,
) -> Result<u8, Error> {
    let settings = super::settings(&args, env)?;
    // What `kiln build` would do with the same environment: caching as it would be.
    let options = BuildOptions {
        cache: {
            let env = &settings.env;
            let naming = kiln_cli::CacheNamingArgs {
                cache_prefix: env.var(crate::env::KILN_CACHE_PREFIX).unwrap_or_default(),
                cache_scope: env.var(crate::env::KILN_CACHE_SCOPE),
                cache_read_scope: env
                    .var(crate::env::KILN_CACHE_READ_SCOPES)
                    .map(|list| list.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            };
            let location = (!env.flag(crate::env::KILN_NO_CACHE))
                .then(|| CacheLocation::default_dir(&settings.home));
            CacheOptions::named(location, &naming, env)
        },
        dry_run: true,
        ..BuildOptions::default()
    };
    let plan = Plan::compute(settings, options, printer).await?;
    show(&plan, output, printer);
    Ok(0)
}

/// The plan, for people on stderr or as JSON on stdout.
pub fn show(plan: &Plan, output: OutputFormat, printer: &Printer) {
    match output {
        OutputFormat::Json => printer.data(&plan.output()),
        OutputFormat::Human => printer.info(&plan.to_string()),
    }
}
