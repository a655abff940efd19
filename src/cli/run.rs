//! `run start|show|cancel|retry`: queueing and steering generation runs (a
//! serving storyflow does the writing).

use clap::Subcommand;

use super::print_json;
use crate::app::App;
use crate::error::{Result, exit};
use crate::run::Step;
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
        run.step
            .as_ref()
            .map_or_else(|| "-".into(), Step::to_string),
        run.progress(),
        run.chapters_done,
        run.chapters_total,
        run.attempt
    );
    if let (Some(code), Some(message)) = (&run.error_code, &run.error_message) {
        println!("  error: {code}: {message}");
    }
}

pub(super) fn run_command(app: &App, command: RunCommand) -> Result<u8> {
    match command {
        RunCommand::Start {
            story_id,
            until_chapter,
            json,
        } => {
            let scope = until_chapter.map_or(RunScope::Book, RunScope::Until);
            let run = app.start_run(&super::story_id(app, &story_id)?, scope)?;
            if json {
                print_run(&run, true)
            } else {
                println!("{}", run.id)
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
