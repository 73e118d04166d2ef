//! `kiln summary post`: a summary `kiln build` wrote, posted to the CI (failures are
//! warnings), through the same summary stage `kiln build` ends with.

use kiln_cli::SummaryPostArgs;

use super::Printer;
use crate::env::Env;
use crate::error::Error;
use crate::reporter::{Reporter, Stage};
use crate::stages::summary::{self, SummaryRequest};

pub async fn post(args: SummaryPostArgs, env: Env, printer: &Printer) -> Result<u8, Error> {
    let summary = crate::platform::read_summary(args.summary.as_deref())?;
    printer.info(&summary.to_string());
    let started = std::time::Instant::now();
    printer.stage_started(Stage::Summary);
    summary::run(
        SummaryRequest {
            summary: &summary,
            file: None,
            post: Some(args.post.platform),
            env: &env,
        },
        printer,
    )
    .await?;
    printer.stage_finished(Stage::Summary, started.elapsed());
    Ok(0)
}
