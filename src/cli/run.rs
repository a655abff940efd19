//! `run start|show|cancel|retry`: queueing and steering generation runs (a
//! serving storyflow does the writing).

use std::time::Duration;

use clap::Subcommand;

use super::print_json;
use crate::app::App;
use crate::error::{Result, exit};
use crate::run::{RunStatus, Step};
use crate::store::Prices;
use crate::store::{Run, RunScope};

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Queue a generation run for a story (a serving storyflow picks it up).
    Start {
        /// The story to write.
        story_id: String,
        /// Stop after this chapter; a later run continues from there.
        #[arg(long, value_name = "N")]
        until_chapter: Option<u32>,
        /// Print the queued run as JSON instead of its id.
        #[arg(long)]
        json: bool,
        /// Wait for the run to end, showing its progress (a bar on a
        /// terminal, a line per change otherwise); exit 0 when it completes,
        /// 1 when it fails or is cancelled.
        #[arg(long)]
        wait: bool,
    },
    /// Show a run.
    Show {
        /// The run's id.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a pending or running run.
    Cancel {
        /// The run's id.
        id: String,
    },
    /// Resume a failed or cancelled run from its last saved chapter.
    Retry {
        /// The run's id.
        id: String,
    },
}

/// The step a run is on, or `-` before its first.
pub(super) fn step_text(run: &Run) -> String {
    run.step
        .as_ref()
        .map_or_else(|| "-".into(), Step::to_string)
}

/// Prints a run as `run show` does (text or JSON).
pub(super) fn print_run(run: &Run, json: bool) {
    if json {
        print_json(&run.to_json(&Prices::default()));
        return;
    }
    println!(
        "run {}\n  story: {}\n  status: {}\n  step: {}\n  progress: {}% ({}/{} chapters)\n  attempt: {}",
        run.id,
        run.story_id,
        run.status,
        step_text(run),
        run.progress(),
        run.chapters_done,
        run.chapters_total,
        run.attempt
    );
    if let (Some(code), Some(message)) = (&run.error_code, &run.error_message) {
        println!("  error: {code}: {message}");
    }
}

/// How long without a sweep before `run start` says no `serve` seems to be
/// running on the database. A serving storyflow records a sweep every
/// `--sweep-interval-s` (60 s by default), so ten minutes of silence means
/// none is, unless it was started with a far longer interval.
const SERVE_SILENCE: Duration = Duration::from_secs(600);

/// `run start` queues a run; a serving storyflow writes it. When none has
/// swept this database lately, say so, or the writer waits for nothing.
fn warn_when_nobody_serves(app: &App) {
    let now = app.store.clock().now();
    let last = app.store.last_sweep().ok().flatten();
    let quiet = last
        .as_ref()
        .and_then(|sweep| sweep.started_at.age_seconds(now))
        .is_none_or(|age| age > SERVE_SILENCE.as_secs() as i64);
    if quiet {
        eprintln!(
            "warning: no `storyflow serve` has been running on this database lately, so the run waits in the queue; start one with `storyflow --db {} serve`",
            app.store.path().display()
        );
    }
}

/// Follows a run until it ends: exit 0 completed, 1 failed or cancelled.
fn wait_for(app: &App, run: Run) -> Result<u8> {
    use std::io::IsTerminal;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(u64::from(run.chapters_total.max(1)));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} chapters · {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let mut last_line = String::new();
    loop {
        let run = app.store.run(&run.id)?;
        let step = run
            .step
            .as_ref()
            .map_or_else(|| "waiting for a worker".into(), Step::to_string);
        let line = format!(
            "{} · {}/{} chapters · {step}",
            run.status, run.chapters_done, run.chapters_total
        );
        match &bar {
            Some(bar) => {
                bar.set_length(u64::from(run.chapters_total.max(1)));
                bar.set_position(u64::from(run.chapters_done));
                bar.set_message(format!("{} · {step}", run.status));
            }
            None if line != last_line => eprintln!("{line}"),
            None => {}
        }
        last_line = line;
        if !run.status.is_active() {
            if let Some(bar) = &bar {
                bar.finish();
            }
            if let (Some(code), Some(message)) = (&run.error_code, &run.error_message) {
                eprintln!("run {} failed: {code}: {message}", run.id);
            }
            return Ok(if run.status == RunStatus::Completed {
                exit::OK
            } else {
                exit::PROBLEMS_FOUND
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub(super) fn run_command(app: &App, command: RunCommand) -> Result<u8> {
    match command {
        RunCommand::Start {
            story_id,
            until_chapter,
            json,
            wait,
        } => {
            let scope = until_chapter.map_or(RunScope::Book, RunScope::Until);
            let run = app.start_run(&super::story_id(app, &story_id)?, scope)?;
            warn_when_nobody_serves(app);
            if json {
                print_run(&run, true)
            } else {
                println!("{}", run.id)
            }
            if wait {
                return wait_for(app, run);
            }
        }
        RunCommand::Show { id, json } => {
            print_run(&app.store.run(&super::run_id(app, &id)?)?, json)
        }
        RunCommand::Cancel { id } => {
            let run = app.store.cancel_run(&super::run_id(app, &id)?)?;
            println!(
                "run {} cancelled after {} of {} chapters",
                run.id, run.chapters_done, run.chapters_total
            );
        }
        RunCommand::Retry { id } => {
            let run = app.retry_run(&super::run_id(app, &id)?)?;
            println!(
                "run {} queued again; it resumes after chapter {}",
                run.id, run.chapters_done
            );
        }
    }
    Ok(exit::OK)
}
