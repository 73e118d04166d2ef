//! `kiln pull REFERENCE`: an artifact from a registry into the layout, with its
//! signatures and attestations, so `kiln run --verify` can check them.

use kiln_cli::PullArgs;
use oci_client::RegistryOperation;

use super::{Printer, registry_options};
use crate::env::Env;
use crate::error::Error;
use crate::oci::layout::Layout;
use crate::registry::{self, Registry};

pub async fn run(args: PullArgs, env: Env, printer: &Printer) -> Result<u8, Error> {
    let reference = registry::parse_reference(&args.reference, "latest")?;
    let name = match &args.tag {
        Some(tag) => tag.clone(),
        None => format!(
            "{}:{}",
            reference.repository(),
            reference.tag().unwrap_or("latest")
        ),
    };
    let dir = args
        .layout
        .unwrap_or_else(|| crate::settings::default_layout(std::path::Path::new(".")));
    let layout = Layout::create(&dir)?;
    let started = std::time::Instant::now();
    let registry = Registry::connect(
        reference,
        RegistryOperation::Pull,
        registry_options(&args.registry, &env, Some(&args.reference)),
    )
    .await?;
    let digest = registry.pull(&layout, &name, printer).await?;
    let attached = crate::sign::attached::pull(&layout, &registry, &digest, printer).await?;
    printer.info(&format!(
        "pulled     {} as oci:{}:{name} ({digest}) in {:.1}s",
        registry.reference().whole(),
        dir.display(),
        started.elapsed().as_secs_f64()
    ));
    for tag in &attached {
        printer.info(&format!("pulled     {tag}"));
    }
    Ok(0)
}
