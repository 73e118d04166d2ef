//! `kiln cache key|restore|save`: a project's caches, for wrappers that use the CI's own
//! cache or save in an always-run post step. `kiln build` restores and saves by itself,
//! through the same restore and save stages.

use kiln_cache::CacheKind;
use kiln_cli::output::CacheKeyOutput;
use kiln_cli::{CacheCommand, CacheKindArg, CacheRunArgs, CacheSaveArgs, OutputFormat};

use super::{Printer, cache_options, registry_options};
use crate::cache::{CacheLocation, CacheOptions, KindPlan};
use crate::diagnose::one_line;
use crate::env::Env;
use crate::error::Error;
use crate::plan::{BuildOptions, Plan};
use crate::reporter::Reporter as _;
use crate::stages::restore::{self, RestoreRequest};
use crate::stages::save::{self, SaveRequest};
use crate::summary::{CacheSummary, human_size};

pub async fn run(
    command: CacheCommand,
    env: Env,
    output: OutputFormat,
    printer: &Printer,
) -> Result<u8, Error> {
    match command {
        CacheCommand::Key(args) => {
            let settings = super::settings(&args.project, env)?;
            let plan = Plan::compute(settings, BuildOptions::default(), printer).await?;
            let wanted = args.kind.map(|k| match k {
                CacheKindArg::Pip => CacheKind::Pip,
                CacheKindArg::Cargo => CacheKind::Cargo,
            });
            let options = CacheOptions::named(None, &args.naming, &plan.settings.env);
            let all = kinds(&plan, &options)?;
            let selected: Vec<&KindPlan> = all
                .iter()
                .filter(|k| wanted.is_none_or(|w| w == k.kind))
                .collect();
            if selected.is_empty() {
                return Err(Error::Usage {
                    message: format!(
                        "A {} project has no `{}` cache",
                        plan.language.name(),
                        wanted.map_or("", CacheKind::as_str)
                    ),
                    hint: "leave out `--kind` to list the project's caches".into(),
                });
            }
            match output {
                OutputFormat::Json => printer.data(
                    &selected
                        .iter()
                        .map(|k| CacheKeyOutput {
                            kind: k.kind.as_str().to_string(),
                            key: k.key.to_string(),
                            restore_prefix: format!("{}-", k.key.restore_prefix()),
                            restore_keys: restore_keys(&k.key),
                            paths: k.roots.iter().map(|r| r.dir.clone()).collect(),
                        })
                        .collect::<Vec<_>>(),
                ),
                OutputFormat::Human => {
                    let lines: Vec<String> = selected
                        .iter()
                        .map(|k| match wanted {
                            Some(_) => k.key.to_string(),
                            None => format!("{} {}", k.kind.as_str(), k.key),
                        })
                        .collect();
                    printer.data_lines(&lines);
                }
            }
            Ok(0)
        }
        CacheCommand::Restore(args) | CacheCommand::Save(CacheSaveArgs { run: args, .. })
            if args.cache.no_cache =>
        {
            printer.info("caching is off (--no-cache): nothing to do");
            Ok(0)
        }
        CacheCommand::Restore(args) => {
            let (plan, location, kinds) = cache_plan(&args, env, printer).await?;
            let restored = restore::run(
                RestoreRequest {
                    location: location.clone(),
                    kinds: kinds.clone(),
                    registry: plan.options.registry.clone(),
                    local: plan.settings.home.cache(),
                },
                printer,
            )
            .await;
            let summary = match restored {
                Ok(outcome) => cache_summary(
                    &plan.options.cache.scope,
                    &location,
                    &kinds,
                    Some(&outcome),
                    None,
                ),
                Err(err) => {
                    let warning = format!("cache: {}; nothing restored", one_line(&err));
                    printer.warn(&warning);
                    let mut summary =
                        cache_summary(&plan.options.cache.scope, &location, &kinds, None, None);
                    summary.warnings.push(warning);
                    summary
                }
            };
            show(&summary, output, printer);
            Ok(0)
        }
        CacheCommand::Save(CacheSaveArgs {
            run: args,
            after_failure,
        }) => {
            let (plan, location, mut kinds) = cache_plan(&args, env, printer).await?;
            // The rule `kiln build` applies to its own save after a failure.
            if after_failure
                && !plan
                    .language
                    .worth_saving_after_failure(&plan.settings.home)
            {
                kinds.clear();
            }
            if kinds.is_empty() {
                printer.info("after a failed build nothing is worth saving: not saved");
                return Ok(0);
            }
            let saved = save::run(
                SaveRequest {
                    location: location.clone(),
                    kinds: kinds.clone(),
                    previous: Vec::new(),
                    registry: plan.options.registry.clone(),
                    local: plan.settings.home.cache(),
                },
                printer,
            )
            .await;
            let summary = match saved {
                Ok(outcome) => cache_summary(
                    &plan.options.cache.scope,
                    &location,
                    &kinds,
                    None,
                    Some(&outcome),
                ),
                Err(err) => {
                    let warning = format!("cache: {}; nothing saved", one_line(&err));
                    printer.warn(&warning);
                    let mut summary =
                        cache_summary(&plan.options.cache.scope, &location, &kinds, None, None);
                    summary.warnings.push(warning);
                    summary
                }
            };
            show(&summary, output, printer);
            Ok(0)
        }
    }
}

/// The project's plan with caching on, its store and its caches.
async fn cache_plan(
    args: &CacheRunArgs,
    env: Env,
    printer: &Printer,
) -> Result<(Plan, CacheLocation, Vec<KindPlan>), Error> {
    let settings = super::settings(&args.project, env)?;
    let options = BuildOptions {
        registry: registry_options(&args.registry, &settings.env, args.cache.cache.as_deref()),
        cache: cache_options(&args.cache, &settings.home, &settings.env)?,
        ..BuildOptions::default()
    };
    let location = options
        .cache
        .location
        .clone()
        .unwrap_or_else(|| CacheLocation::default_dir(&settings.home));
    let plan = Plan::compute(settings, options, printer).await?;
    let kinds = kinds(&plan, &plan.options.cache)?;
    Ok((plan, location, kinds))
}

/// The keys a restore tries, in kiln's own order: the exact key in each scope it reads,
/// then the restore prefix in each.
fn restore_keys(key: &kiln_cache::CacheKey) -> Vec<String> {
    let order = key.read_order();
    let exact = order.iter().map(|(exact, _)| exact.clone());
    let prefixes = order.iter().map(|(_, prefix)| format!("{prefix}-"));
    exact.chain(prefixes).collect()
}

fn kinds(plan: &Plan, options: &CacheOptions) -> Result<Vec<KindPlan>, Error> {
    plan.language
        .cache_kinds(&plan.project, options, &plan.settings.home)
        .map_err(|source| Error::Io {
            what: "compute the cache keys".into(),
            source,
        })
}

fn cache_summary(
    scope: &kiln_cache::Scope,
    location: &CacheLocation,
    kinds: &[KindPlan],
    restored: Option<&restore::Restored>,
    saved: Option<&save::Saved>,
) -> CacheSummary {
    let mut warnings = Vec::new();
    let kinds = kinds
        .iter()
        .map(|k| {
            let r = restored.and_then(|r| r.kinds.iter().find(|x| x.kind == k.kind));
            let s = saved.and_then(|s| s.kinds.iter().find(|x| x.kind == k.kind));
            warnings.extend(r.and_then(|r| r.warning.clone()));
            warnings.extend(s.and_then(|s| s.warning.clone()));
            crate::stages::save::kind_summary(k, r, s, false)
        })
        .collect();
    CacheSummary {
        store: location.to_string(),
        scope: scope.name.clone(),
        read_scopes: scope.reads.clone(),
        kinds,
        restore_seconds: 0.0,
        save_seconds: 0.0,
        warnings,
    }
}

fn show(summary: &CacheSummary, output: OutputFormat, printer: &Printer) {
    for kind in &summary.kinds {
        printer.info(&format!(
            "cache      {} {} ({}): {} restored, {} uploaded in {} chunks",
            kind.kind,
            kind.key,
            kind.hit,
            human_size(kind.bytes_restored),
            human_size(kind.bytes_uploaded),
            kind.chunks_uploaded
        ));
    }
    super::data(output, printer, summary);
}
