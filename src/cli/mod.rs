//! The command line: clap definitions (their doc comments are the help
//! text), the dispatch from a parsed command to its group, and the helpers
//! the groups share. Each group lives in its own file (`story`, `chapter`,
//! `bible`, `run`, `maintenance`, `serve`); each command returns its exit code and
//! errors carry theirs (see `error::exit`).

mod bible;
mod chapter;
mod maintenance;
mod run;
mod serve;
mod story;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::config::ServeConfig;
pub use crate::config::{GeneratorKind, ServeArgs};
use crate::error::{Error, Result};
use crate::run::{RunId, StoryId};
use crate::store::Store;

pub use bible::BibleCommand;
pub use chapter::ChapterCommand;
pub use maintenance::{DiagnoseArgs, DiagnoseTarget, FixOrphansArgs, HealthCheckArgs};
pub use run::RunCommand;
pub use story::{ExportFormat, StoryCommand};

/// storyflow: a self-hosted story generation workbench.
///
/// Keeps stories and generation runs in one SQLite file, writes stories
/// chapter by chapter through a text generator, and serves a JSON API and a
/// status page. Run without a command to serve on 127.0.0.1:7878.
#[derive(Debug, Parser)]
#[command(name = "storyflow", version, propagate_version = true)]
pub struct Cli {
    /// The database file (created if missing).
    #[arg(
        long,
        global = true,
        env = "STORYFLOW_DB",
        default_value = "storyflow.db",
        value_name = "PATH"
    )]
    pub db: PathBuf,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
// `serve`'s flags make its variant large; the command is parsed once.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Serve the HTTP API and status page, run the workers and the timer.
    Serve(ServeArgs),
    /// Manage stories.
    #[command(subcommand)]
    Story(StoryCommand),
    /// Manage generation runs.
    #[command(subcommand)]
    Run(RunCommand),
    /// Read, edit or rewrite one chapter.
    #[command(subcommand)]
    Chapter(ChapterCommand),
    /// Keep a story's bible: the characters, places, objects, facts and
    /// threads its chapters' prompts carry.
    #[command(subcommand)]
    Bible(BibleCommand),
    /// Analyse a run, a story, or the whole database, with recommendations.
    /// Exits 1 when problems are found.
    Diagnose(DiagnoseArgs),
    /// Check integrity, foreign keys, orphans, stuck runs and chapter counts;
    /// with --fix, repair what is safe. Exits 1 when problems are left.
    HealthCheck(HealthCheckArgs),
    /// List orphaned runs, chapters and events, and remove them (one
    /// transaction) unless --dry-run.
    FixOrphans(FixOrphansArgs),
    /// Write a consistent copy of the database to PATH, safe while serving.
    Backup {
        /// Where to write the copy (must not exist).
        path: PathBuf,
    },
}

/// Runs the parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<u8> {
    let Some(command) = cli.command else {
        return serve::serve(&cli.db, ServeConfig::without_arguments());
    };
    match command {
        Command::Serve(args) => serve::serve(&cli.db, ServeConfig::from_args(&args)?),
        Command::Story(command) => {
            let creates = matches!(
                command,
                StoryCommand::Add { .. } | StoryCommand::Import { .. }
            );
            story::story(&open_app(&cli.db, creates)?, command)
        }
        Command::Run(command) => run::run_command(&open_app(&cli.db, false)?, command),
        Command::Chapter(command) => chapter::chapter_command(&open_app(&cli.db, false)?, command),
        Command::Bible(command) => bible::bible_command(&open_app(&cli.db, false)?, command),
        Command::Diagnose(args) => maintenance::diagnose(&open_app(&cli.db, false)?, args),
        Command::HealthCheck(args) => maintenance::health_check(&open_app(&cli.db, false)?, args),
        Command::FixOrphans(args) => maintenance::fix_orphans(&open_app(&cli.db, false)?, args),
        Command::Backup { path } => maintenance::backup(&cli.db, &path),
    }
}

/// Opens the database of a command. Only `serve`, `story add` and `story
/// import` may create a missing file: every other command reading or
/// running against a path that holds no database says so (exit 3) instead
/// of leaving an empty database behind.
fn open_app(db: &Path, may_create: bool) -> Result<App> {
    if !may_create && !db.exists() {
        return Err(Error::DatabaseUnusable {
            path: db.display().to_string(),
            reason: "no database at this path; check --db or STORYFLOW_DB, or create one with `storyflow story add` or `storyflow serve`".into(),
        });
    }
    Ok(App::new(Store::open(db, 2)?, ServeConfig::default()))
}

/// The shortest id prefix a command accepts.
const MIN_ID_PREFIX: usize = 6;

/// A story id as given on the command line: a whole id, or a unique prefix
/// of at least six characters.
fn story_id(app: &App, text: &str) -> Result<StoryId> {
    if let Ok(id) = StoryId::parse(text) {
        return Ok(id);
    }
    let prefix = id_prefix("story", text)?;
    unique("story", text, app.store.story_ids_with_prefix(&prefix, 11)?)
}

/// The same for a run id.
fn run_id(app: &App, text: &str) -> Result<RunId> {
    if let Ok(id) = RunId::parse(text) {
        return Ok(id);
    }
    let prefix = id_prefix("run", text)?;
    unique("run", text, app.store.run_ids_with_prefix(&prefix, 11)?)
}

fn id_prefix(kind: &str, text: &str) -> Result<String> {
    let prefix = text.trim().to_ascii_lowercase();
    if prefix.len() < MIN_ID_PREFIX || !prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(Error::validation(
            "id",
            format!(
                "`{}` is not a {kind} id: give the whole id or its first {MIN_ID_PREFIX} characters or more",
                text.chars().take(64).collect::<String>()
            ),
        ));
    }
    Ok(prefix)
}

fn unique<T: std::fmt::Display>(kind: &str, text: &str, matches: Vec<T>) -> Result<T> {
    let listed: Vec<String> = matches.iter().map(ToString::to_string).collect();
    let mut matches = matches.into_iter();
    match (matches.next(), matches.next()) {
        (Some(only), None) => Ok(only),
        (None, _) => Err(Error::validation(
            "id",
            format!("no {kind} id starts with `{text}`"),
        )),
        (Some(_), Some(_)) => Err(Error::validation(
            "id",
            format!(
                "`{text}` is the start of several {kind} ids ({}{}); give more characters",
                listed
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if listed.len() > 10 { ", …" } else { "" }
            ),
        )),
    }
}

/// One line of JSON, as a count table is shown in text output.
fn compact(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// A spinner on standard error while long work runs, only on a terminal.
fn spinner(message: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// clap checks names and ids only when a command is built; this builds
    /// every subcommand, so a clash fails here rather than at a user's run.
    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
