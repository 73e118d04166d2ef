//! `kiln push SOURCE DESTINATION`: an artifact from the layout to a registry, with its
//! signatures and attestations.

use kiln_cli::output::PushOutput;
use kiln_cli::{OutputFormat, PushArgs};
use oci_client::RegistryOperation;

use super::{Printer, registry_options};
use crate::env::Env;
use crate::error::Error;
use crate::registry::{self, Registry};
use crate::reporter::{Reporter, Stage};
use crate::stages::push::{self, PushRequest};
use crate::summary::human_size;

pub async fn run(
    args: PushArgs,
    env: Env,
    output: OutputFormat,
    printer: &Printer,
) -> Result<u8, Error> {
    let source = crate::target::locate(&args.source, args.layout.as_deref(), &env).await?;
    let default_tag = source
        .name
        .rsplit_once(':')
        .map_or("latest", |(_, tag)| tag);
    let reference = registry::parse_reference(&args.destination, default_tag)?;
    printer.stage_started(Stage::Push);
    let started = std::time::Instant::now();
    let registry = Registry::connect(
        reference,
        RegistryOperation::Push,
        registry_options(&args.registry, &env, Some(&args.destination)),
    )
    .await?;
    let pushed = push::run(
        PushRequest {
            layout: &source.layout,
            registry: &registry,
            digest: &source.manifest_digest,
            attached: true,
        },
        printer,
    )
    .await?;
    printer.stage_finished(Stage::Push, started.elapsed());
    for tag in &pushed.attached {
        printer.info(&format!("pushed     {tag}"));
    }
    printer.info(&format!(
        "pushed     {} ({} sent, {} already there)",
        pushed.reference,
        human_size(pushed.bytes_sent),
        human_size(pushed.bytes_skipped)
    ));
    super::data(
        output,
        printer,
        &PushOutput {
            reference: pushed.reference,
            digest: pushed.digest,
            bytes_sent: pushed.bytes_sent,
            bytes_skipped: pushed.bytes_skipped,
            attached: pushed.attached,
        },
    );
    Ok(0)
}
