//! The only place that writes to the terminal.
//!
//! stderr carries progress, warnings, errors and the human summary; stdout carries
//! data only (`--output json`). On a TTY outside CI, long stages show an indicatif
//! spinner with the stage, the current step and the elapsed time; in CI, under
//! `--quiet` or `KILN_NO_PROGRESS`, plain lines instead. `NO_COLOR` is honoured.
#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use anstyle::{AnsiColor, Style};

use crate::diagnose::Diagnose;
use crate::env::Env;
use crate::error::Error;
use crate::reporter::{Reporter, Stage};

/// How errors and hints look on a colour terminal.
const ERROR: Style = AnsiColor::Red.on_default().bold();
const HINT: Style = AnsiColor::Cyan.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();
const STAGE: Style = Style::new().bold();
const DONE: Style = AnsiColor::Green.on_default();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Errors and warnings only.
    Quiet,
    /// One line per event: CI logs, pipes.
    Plain,
    /// Spinners on a terminal.
    Spinner,
}

/// A transfer under way: its byte bar (spinner mode), when it began, its size.
#[derive(Debug)]
struct Transfer {
    bar: Option<ProgressBar>,
    started: Instant,
    total: u64,
    /// Bytes through so far.
    done: u64,
}

/// Terminal output for the binary; implements [`Reporter`] for the stages.
#[derive(Debug)]
pub struct Printer {
    mode: Mode,
    verbose: bool,
    color: bool,
    spinner: Mutex<Option<ProgressBar>>,
    /// The transfers under way, by label.
    transfers: Mutex<HashMap<String, Transfer>>,
    bars: MultiProgress,
}

impl Printer {
    pub fn new(quiet: bool, verbose: bool, env: &Env) -> Printer {
        let tty = std::io::stderr().is_terminal();
        let no_progress =
            env.get(crate::env::KILN_NO_PROGRESS).is_some() || env.get(crate::env::CI).is_some();
        let mode = if quiet {
            Mode::Quiet
        } else if tty && !no_progress && !verbose {
            Mode::Spinner
        } else {
            Mode::Plain
        };
        Printer {
            mode,
            verbose,
            color: tty && env.get(crate::env::NO_COLOR).is_none(),
            spinner: Mutex::new(None),
            transfers: Mutex::new(HashMap::new()),
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    /// Prints a line on stderr without tearing an active spinner.
    fn line(&self, text: &str) {
        match self.spinner.lock().expect("printer lock").as_ref() {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// A block of information (plan, summary) for people, on stderr.
    pub fn info(&self, text: &str) {
        if self.mode != Mode::Quiet {
            self.line(text);
        }
    }

    /// Machine-readable data on stdout.
    pub fn data(&self, json: &impl serde::Serialize) {
        println!(
            "{}",
            serde_json::to_string_pretty(json).expect("output serialises")
        );
    }

    /// Plain lines of data on stdout (`kiln cache key`).
    pub fn data_lines(&self, lines: &[String]) {
        for line in lines {
            println!("{line}");
        }
    }

    /// Prints `err`, its causes and its hint; returns the exit code for it.
    pub fn error(&self, err: &Error) -> u8 {
        if let Some(bar) = self.spinner.lock().expect("printer lock").take() {
            bar.finish_and_clear();
        }
        eprintln!("{}", self.render_error(err));
        err.blame().exit_code()
    }

    /// `error: …`, each cause on a `Caused by:` line, then the hint.
    pub fn render_error(&self, err: &Error) -> String {
        let causes = crate::diagnose::causes(err);
        let mut causes = causes.iter();
        let mut out = format!(
            "{} {}",
            self.paint(ERROR, "error:"),
            indent(causes.next().map_or("", String::as_str), "  ")
        );
        for cause in causes {
            out.push_str(&format!("\n  Caused by: {}", indent(cause, "    ")));
        }
        if let Some(hint) = err.hint() {
            out.push_str(&format!("\n\n{} {}", self.paint(HINT, "hint:"), hint));
        }
        out
    }
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .collect::<Vec<_>>()
        .join(&format!("\n{prefix}"))
}

impl Reporter for Printer {
    fn stage_started(&self, stage: Stage) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => self.line(&format!("{} {stage}", self.paint(STAGE, "==>"))),
            Mode::Spinner => {
                let bar = ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template(
                        "{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed}",
                    )
                    .expect("valid template"),
                );
                bar.set_prefix(stage.name());
                bar.enable_steady_tick(Duration::from_millis(100));
                *self.spinner.lock().expect("printer lock") = Some(bar);
            }
        }
    }

    fn stage_finished(&self, stage: Stage, elapsed: Duration) {
        let done = format!(
            "{} {stage} in {:.1}s",
            self.paint(DONE, "✓"),
            elapsed.as_secs_f64()
        );
        if let Some(bar) = self.spinner.lock().expect("printer lock").take() {
            bar.finish_and_clear();
        }
        if self.mode != Mode::Quiet {
            self.line(&done);
        }
    }

    fn step(&self, message: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => self.line(&format!("    {message}")),
            Mode::Spinner => {
                if let Some(bar) = self.spinner.lock().expect("printer lock").as_ref() {
                    bar.set_message(message.to_string());
                }
            }
        }
    }

    fn warn(&self, message: &str) {
        self.line(&format!(
            "{} {}",
            self.paint(WARN, "warning:"),
            indent(message, "  ")
        ));
    }

    fn output_line(&self, line: &str) {
        if self.verbose {
            self.line(line);
        }
    }

    fn transfer_started(&self, label: &str, total: u64) {
        let bar = (self.mode == Mode::Spinner).then(|| {
            let bar = self.bars.add(ProgressBar::new(total)).with_style(
                ProgressStyle::with_template(
                    "  {prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar
        });
        self.transfers.lock().expect("printer lock").insert(
            label.to_string(),
            Transfer {
                bar,
                started: Instant::now(),
                total,
                done: 0,
            },
        );
    }

    fn transfer_progress(&self, label: &str, done: u64) {
        if let Some(transfer) = self.transfers.lock().expect("printer lock").get_mut(label) {
            transfer.done = done;
            if let Some(bar) = &transfer.bar {
                bar.set_position(done);
            }
        }
    }

    fn transfer_finished(&self, label: &str, ok: bool) {
        let Some(Transfer {
            bar,
            started,
            total,
            done,
        }) = self.transfers.lock().expect("printer lock").remove(label)
        else {
            return;
        };
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
        if self.mode != Mode::Quiet {
            let seconds = started.elapsed().as_secs_f64();
            let line = if ok {
                let rate = total as f64 / seconds.max(1e-3);
                format!(
                    "    {label} sent {} in {seconds:.1}s ({}/s)",
                    crate::summary::human_size(total),
                    crate::summary::human_size(rate as u64)
                )
            } else {
                format!(
                    "    {label} failed after {} of {} in {seconds:.1}s",
                    crate::summary::human_size(done),
                    crate::summary::human_size(total)
                )
            };
            self.line(&line);
        }
    }
}
