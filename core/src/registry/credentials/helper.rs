//! Docker credential helpers: `docker-credential-<name> get`, bounded in time.

use std::time::Duration;

use secrecy::zeroize::Zeroizing;
use serde_json::Value;

use super::{Basic, CredentialError};
use crate::env::Env;
use crate::process::{Cmd, ProcessError};
use crate::reporter::Silent;

/// How long a credential helper may take to answer before kiln gives up on it: a helper
/// waiting on a passphrase prompt nobody can see would otherwise hang the pipeline.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `docker-credential-<helper> get` with `server_url` on stdin. `Ok(None)` when the
/// helper has no credential for it.
pub(super) async fn ask_helper(
    helper: &str,
    server_url: &str,
    configured: &str,
    env: &Env,
    timeout: Duration,
) -> Result<Option<Basic>, CredentialError> {
    let program = format!("docker-credential-{helper}");
    let path = crate::process::find_program(&program, env).ok_or_else(|| {
        CredentialError::HelperMissing {
            program: program.clone(),
            configured: configured.to_owned(),
        }
    })?;
    tracing::debug!(helper = %path.display(), server = server_url, "asking credential helper");

    let asked = Cmd::with_full_environment(&path, env)
        .arg("get")
        .stdin(server_url.as_bytes().to_vec())
        .timeout(timeout)
        .run_unchecked(&Silent)
        .await;
    let output = match asked {
        Ok(output) => output,
        Err(ProcessError::TimedOut { .. }) => {
            return Err(CredentialError::HelperTimedOut {
                program,
                server: server_url.to_owned(),
                timeout,
            });
        }
        Err(err) => {
            return Err(CredentialError::HelperRun {
                program,
                source: err,
            });
        }
    };
    let stdout = Zeroizing::new(output.stdout);

    if !output.status.success() {
        // Docker's helpers report "credentials not found in native keychain" on stdout;
        // a failed helper prints no credential, so its output is safe to show.
        let stdout: &str = &stdout;
        let stderr: &str = &output.stderr;
        if [&stdout, &stderr]
            .iter()
            .any(|text| text.to_ascii_lowercase().contains("credentials not found"))
        {
            tracing::debug!(helper = %program, server = server_url, "credential helper has none");
            return Ok(None);
        }
        return Err(CredentialError::HelperFailed {
            program,
            server: server_url.to_owned(),
            status: output.status,
            output: crate::process::Tails(stdout, stderr).to_string(),
        });
    }

    // Parsed as a `Value` so that no error can quote the secret (see `DockerConfig`).
    let answer = match serde_json::from_str::<Value>(&stdout) {
        Ok(Value::Object(answer)) => answer,
        Ok(_) => {
            return Err(CredentialError::HelperOutput {
                program,
                source: None,
            });
        }
        Err(source) => {
            return Err(CredentialError::HelperOutput {
                program,
                source: Some(source),
            });
        }
    };
    let field = |name: &str| match answer.get(name) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(CredentialError::HelperOutput {
            program: program.clone(),
            source: None,
        }),
    };
    let (username, secret) = (field("Username")?, field("Secret")?);
    if secret.is_empty() {
        tracing::debug!(helper = %program, server = server_url, "credential helper answered no secret");
        return Ok(None);
    }
    // A username of `<token>` marks the secret as an identity token; Docker's own file
    // store pairs it with the same username, and so does kiln.
    Ok(Some(Basic::new(username, secret)))
}
