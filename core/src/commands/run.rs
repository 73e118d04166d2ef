//! `kiln run`: a built artifact (or a `.wasm` file) in the capability-scoped sandbox.

use kiln_cli::RunArgs;

use super::Printer;
use crate::env::Env;
use crate::error::Error;
use crate::runner::{self, RunError, RunRequest};
use crate::settings::KilnHome;
use crate::target;

/// `kiln run`'s exit code when the guest traps, as `wasmtime run` does (128 + SIGABRT).
const TRAP_EXIT_CODE: u8 = 134;

pub async fn run(args: RunArgs, env: Env, printer: &Printer) -> Result<u8, Error> {
    let loaded = if args.verify {
        if args.target.ends_with(".wasm") {
            return Err(Error::Usage {
                message: format!(
                    "`{}` is a bare `.wasm` file: it carries no signature to verify",
                    args.target
                ),
                hint: "run a stored artifact (a project directory, `oci:DIR:REF` or `NAME:TAG`)"
                    .into(),
            });
        }
        let located = target::locate(&args.target, args.layout.as_deref(), &env).await?;
        let (key, _) = super::verify::verifier(&args.policy, &env, printer)?;
        crate::verify::verify_in_layout(
            &located.layout,
            &located.manifest_digest,
            &key,
            &super::verify::policy(&args.policy),
        )?;
        target::read_wasm(&located)?
    } else {
        target::load(&args.target, args.layout.as_deref(), &env).await?
    };
    // `--env K` passes kiln's own value of K.
    let mut guest_env = Vec::with_capacity(args.env.len());
    for var in args.env {
        let value = match var.value {
            Some(value) => value,
            None => env.var(&var.key).ok_or_else(|| Error::Usage {
                message: format!(
                    "`{}` is not set in kiln's environment, so there is no value to pass on",
                    var.key
                ),
                hint: format!("set it, or pass `--env {}=VALUE`", var.key),
            })?,
        };
        guest_env.push((var.key, value));
    }
    let outcome = runner::run(RunRequest {
        wasm: loaded.wasm,
        digest: loaded.digest,
        program_name: loaded.name,
        args: args.args,
        env: guest_env,
        dirs: args.dirs,
        network: args.net,
        cache: Some(code_cache(&env)?),
        limits: runner::Limits {
            timeout: args.timeout,
            max_memory: args.max_memory.unwrap_or(runner::DEFAULT_MAX_MEMORY),
            fuel: args.fuel,
        },
    })
    .await;
    match outcome {
        // As a POSIX shell sees it: the low 8 bits.
        Ok(outcome) => Ok((outcome.exit_code & 0xff) as u8),
        Err(err @ RunError::Trap { .. }) => {
            printer.error(&err.into());
            Ok(TRAP_EXIT_CODE)
        }
        Err(RunError::Limit { program, limit }) => {
            printer.error(&RunError::Limit { program, limit }.into());
            Ok(limit.exit_code())
        }
        Err(err) => Err(err.into()),
    }
}

/// kiln's compiled-code cache and its key.
fn code_cache(env: &Env) -> Result<runner::CodeCache, Error> {
    let home = KilnHome::from_env(env)?;
    Ok(runner::CodeCache {
        dir: home.compiled(),
        key: home.code_key()?,
    })
}
