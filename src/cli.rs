//! The command line: clap definitions (their doc comments are the help
//! text), validation into settings, and one function per command. Each
//! command returns its exit code; errors carry theirs (see `error::exit`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::app::App;
use crate::config::ServeConfig;
pub use crate::config::{GeneratorKind, ServeArgs};
use crate::engine::{Engine, EngineSettings};
use crate::error::{Error, Result, exit};
use crate::http::{EdgePolicy, HttpServer};
use crate::maintenance::{self, HealthOptions, Report, Sweeper};
use crate::run::Step;
use crate::store::{ChapterEdit, NewStory, RunFilter, RunId, RunScope, Store, StoryId};

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

#[derive(Debug, Subcommand)]
pub enum StoryCommand {
    /// Create a story.
    Add {
        title: String,
        #[arg(long, default_value = "")]
        premise: String,
        /// The outline text.
        #[arg(long, conflicts_with = "outline_file")]
        outline: Option<String>,
        /// Read the outline from a file.
        #[arg(long, value_name = "PATH")]
        outline_file: Option<PathBuf>,
        /// Explicit chapter count.
        #[arg(long)]
        chapters: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// List stories, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show one story with its chapter count and runs.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Print the story as Markdown.
    Export {
        id: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Markdown)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short, value_name = "PATH")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Markdown,
    Epub,
}

#[derive(Debug, Subcommand)]
pub enum ChapterCommand {
    /// Print one chapter.
    Show {
        story_id: String,
        number: u32,
        #[arg(long)]
        json: bool,
    },
    /// Replace a chapter's text (and/or title) with your own.
    Edit {
        story_id: String,
        number: u32,
        /// The new text, from a file (`-` for standard input).
        #[arg(long, value_name = "PATH", conflicts_with = "text")]
        file: Option<PathBuf>,
        /// The new text.
        #[arg(long)]
        text: Option<String>,
        /// A new title.
        #[arg(long)]
        title: Option<String>,
    },
    /// Queue a run that rewrites this one chapter (and its summary) only.
    Regenerate { story_id: String, number: u32 },
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Queue a generation run for a story (a serving storyflow picks it up).
    Start {
        story_id: String,
        /// Stop after this chapter; a later run continues from there.
        #[arg(long, value_name = "N")]
        until_chapter: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Show a run.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a pending or running run.
    Cancel { id: String },
    /// Resume a failed or cancelled run from its last saved chapter.
    Retry { id: String },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false, id = "target")]
pub struct DiagnoseTarget {
    /// A run id.
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// A story id (it need not exist: runs pointing at it are shown).
    #[arg(long, value_name = "ID")]
    pub story: Option<String>,
    /// The whole database.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub target: DiagnoseTarget,
    /// Add the whole event timeline and the chapter list.
    #[arg(long)]
    pub verbose: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HealthCheckArgs {
    /// Repair what is safe to repair, in one transaction.
    #[arg(long)]
    pub fix: bool,
    /// Run the full integrity check (slower) instead of the quick one.
    #[arg(long)]
    pub full: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FixOrphansArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

/// Runs the parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<u8> {
    let Some(command) = cli.command else {
        return serve(&cli.db, ServeConfig::without_arguments());
    };
    match command {
        Command::Serve(args) => serve(&cli.db, ServeConfig::from_args(&args)?),
        Command::Story(command) => story(&open_app(&cli.db)?, command),
        Command::Run(command) => run_command(&open_app(&cli.db)?, command),
        Command::Chapter(command) => chapter_command(&open_app(&cli.db)?, command),
        Command::Diagnose(args) => diagnose(&open_app(&cli.db)?, args),
        Command::HealthCheck(args) => health_check(&open_app(&cli.db)?, args),
        Command::FixOrphans(args) => fix_orphans(&open_app(&cli.db)?, args),
        Command::Backup { path } => {
            let store = Store::open(&cli.db, 1)?;
            store.backup(&path)?;
            println!("backed up {} to {}", cli.db.display(), path.display());
            Ok(exit::OK)
        }
    }
}

fn open_app(db: &Path) -> Result<App> {
    Ok(App::new(Store::open(db, 2)?, ServeConfig::default()))
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

fn serve(db: &Path, config: ServeConfig) -> Result<u8> {
    let generator = config.generator.build()?;
    let app = Arc::new(App::new(Store::open(db, config.connections())?, config));
    let config = &app.config;
    let policy = EdgePolicy::new(config.addr.ip(), config.token.clone());
    let http =
        HttpServer::start(app.clone(), config.addr, policy, config.http.clone()).map_err(|e| {
            Error::validation("--addr", format!("cannot listen on {}: {e}", config.addr))
        })?;
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .map_err(|e| Error::Internal(format!("cannot install the signal handler: {e}")))?;
    let sweeper = Sweeper::start(app.clone(), config.sweep_interval)
        .map_err(|e| Error::Internal(format!("cannot start the sweeper: {e}")))?;
    sweeper.wait_for_first_sweep(Duration::from_secs(30));
    let engine = Engine::start(app.clone(), generator, EngineSettings::from_config(config))
        .map_err(|e| Error::Internal(format!("cannot start the workers: {e}")))?;
    log::info!(
        "storyflow {} serving http://{} (database {}, generator {}, {} workers)",
        env!("CARGO_PKG_VERSION"),
        http.addr(),
        db.display(),
        config.generator.name(),
        config.workers
    );
    let _ = stop_rx.recv();
    log::info!("shutting down: finishing requests, releasing runs in hand");
    http.shutdown();
    engine.shutdown(config.shutdown_grace);
    sweeper.shutdown();
    log::info!("stopped");
    Ok(exit::OK)
}

fn story(app: &App, command: StoryCommand) -> Result<u8> {
    match command {
        StoryCommand::Add {
            title,
            premise,
            outline,
            outline_file,
            chapters,
            json,
        } => {
            let outline = match (outline, outline_file) {
                (Some(text), _) => text,
                (None, Some(path)) => std::fs::read_to_string(&path).map_err(|e| {
                    Error::validation(
                        "--outline-file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?,
                (None, None) => String::new(),
            };
            let story = app.store.create_story(&NewStory {
                title,
                premise,
                outline,
                chapter_count: chapters,
                ..Default::default()
            })?;
            let count = app.counts.for_story(&story);
            let warnings = crate::progress::check_outline(&story.outline, story.chapter_count);
            if json {
                print_json(
                    &json!({ "story": story, "chapter_count": count.count, "chapter_count_source": count.source, "warnings": warnings }),
                );
            } else {
                println!("{}", story.id);
                for warning in warnings {
                    eprintln!("warning: outline {warning}");
                }
            }
        }
        StoryCommand::List { limit, json } => {
            let stories = app.store.list_stories(limit.clamp(1, 10_000), 0)?;
            if json {
                print_json(&stories);
            } else {
                for story in stories {
                    let count = app.counts.for_story(&story);
                    println!(
                        "{}  {:>4} chapters ({:<8})  {}",
                        story.id,
                        count.count,
                        count.source.as_str(),
                        story.title
                    );
                }
            }
        }
        StoryCommand::Show { id, json } => {
            let story = app.store.story(&StoryId::parse(&id)?)?;
            let count = app.counts.for_story(&story);
            let chapters = app.store.chapters(&story.id)?;
            let runs = app.store.list_runs(&RunFilter {
                story_id: Some(story.id.clone()),
                limit: 20,
                ..Default::default()
            })?;
            if json {
                print_json(&json!({
                    "story": story, "chapter_count": count.count, "chapter_count_source": count.source,
                    "chapters_saved": chapters.len(), "runs": runs.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
                }));
            } else {
                println!(
                    "{}\n  id: {}\n  chapters: {} saved of {} ({})",
                    story.title,
                    story.id,
                    chapters.len(),
                    count.count,
                    count.source.as_str()
                );
                if !story.premise.is_empty() {
                    println!("  premise: {}", story.premise);
                }
                for run in runs {
                    println!(
                        "  run {} {} {}% ({}/{})",
                        run.id,
                        run.status,
                        run.progress(),
                        run.chapters_done,
                        run.chapters_total
                    );
                }
            }
        }
        StoryCommand::Export { id, format, output } => {
            let story = app.store.story(&StoryId::parse(&id)?)?;
            let chapters = app.store.chapters(&story.id)?;
            let bytes = match format {
                ExportFormat::Markdown => crate::export::markdown(&story, &chapters).into_bytes(),
                ExportFormat::Epub => crate::export::epub(&story, &chapters)?,
            };
            write_output(output.as_deref(), &bytes, format == ExportFormat::Epub)?;
        }
    }
    Ok(exit::OK)
}

/// Writes an export to a file, or to standard output (binary output only
/// when it is not a terminal).
fn write_output(path: Option<&Path>, bytes: &[u8], binary: bool) -> Result<()> {
    use std::io::{IsTerminal, Write};
    match path {
        Some(path) => std::fs::write(path, bytes).map_err(|e| {
            Error::validation("--output", format!("cannot write {}: {e}", path.display()))
        }),
        None if binary && std::io::stdout().is_terminal() => Err(Error::validation(
            "--output",
            "an EPUB is binary; write it to a file with --output book.epub (or redirect standard output)",
        )),
        None => std::io::stdout()
            .write_all(bytes)
            .map_err(|e| Error::Internal(format!("cannot write to standard output: {e}"))),
    }
}

fn chapter_command(app: &App, command: ChapterCommand) -> Result<u8> {
    match command {
        ChapterCommand::Show {
            story_id,
            number,
            json,
        } => {
            let chapter = app.store.chapter(&StoryId::parse(&story_id)?, number)?;
            if json {
                print_json(&chapter);
            } else {
                println!(
                    "## Chapter {}: {}\n\n{}",
                    chapter.number, chapter.title, chapter.content
                );
            }
        }
        ChapterCommand::Edit {
            story_id,
            number,
            file,
            text,
            title,
        } => {
            let content = match (file, text) {
                (Some(path), _) if path.as_os_str() == "-" => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(
                        |e| Error::validation("--file", format!("cannot read standard input: {e}")),
                    )?;
                    Some(text)
                }
                (Some(path), _) => Some(std::fs::read_to_string(&path).map_err(|e| {
                    Error::validation("--file", format!("cannot read {}: {e}", path.display()))
                })?),
                (None, text) => text,
            };
            let edit = ChapterEdit {
                title,
                content,
                locked: None,
            };
            let chapter = app
                .store
                .update_chapter(&StoryId::parse(&story_id)?, number, &edit)?;
            println!(
                "chapter {} of story {story_id} saved ({} words)",
                chapter.number, chapter.word_count
            );
        }
        ChapterCommand::Regenerate { story_id, number } => {
            let run = app.start_run(&StoryId::parse(&story_id)?, RunScope::Rewrite(number))?;
            println!("{}", run.id);
        }
    }
    Ok(exit::OK)
}

fn print_run(run: &crate::store::Run, json: bool) {
    if json {
        print_json(&run.to_json());
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

fn run_command(app: &App, command: RunCommand) -> Result<u8> {
    match command {
        RunCommand::Start {
            story_id,
            until_chapter,
            json,
        } => {
            let scope = until_chapter.map_or(RunScope::Book, RunScope::Until);
            let run = app.start_run(&StoryId::parse(&story_id)?, scope)?;
            if json {
                print_run(&run, true)
            } else {
                println!("{}", run.id)
            }
        }
        RunCommand::Show { id, json } => print_run(&app.store.run(&RunId::parse(&id)?)?, json),
        RunCommand::Cancel { id } => {
            let run = app.store.cancel_run(&RunId::parse(&id)?)?;
            println!(
                "run {} cancelled after {} of {} chapters",
                run.id, run.chapters_done, run.chapters_total
            );
        }
        RunCommand::Retry { id } => {
            let run = app.retry_run(&RunId::parse(&id)?)?;
            println!(
                "run {} queued again; it resumes after chapter {}",
                run.id, run.chapters_done
            );
        }
    }
    Ok(exit::OK)
}

fn print_findings(findings: &[maintenance::Finding], recommendations: &[String]) {
    for f in findings {
        println!(
            "  [{}] {}: {}",
            format!("{:?}", f.severity).to_lowercase(),
            f.code,
            f.message
        );
    }
    if !recommendations.is_empty() {
        println!("recommendations:");
        for r in recommendations {
            println!("  - {r}");
        }
    }
}

fn problems_exit(report: &impl Report) -> u8 {
    if report.has_problems() {
        exit::PROBLEMS_FOUND
    } else {
        exit::OK
    }
}

fn diagnose(app: &App, args: DiagnoseArgs) -> Result<u8> {
    let DiagnoseTarget { run, story, .. } = args.target;
    if let Some(id) = run {
        let report = maintenance::diagnose_run(app, &RunId::parse(&id)?, args.verbose)?;
        if args.json {
            print_json(&report);
        } else {
            println!("run {}", report.run_id);
            if let Some(run) = &report.run {
                println!(
                    "  status: {}  step: {}  progress: {}% ({}/{})  attempt: {}",
                    run.status,
                    run.step
                        .as_ref()
                        .map_or_else(|| "-".into(), Step::to_string),
                    run.progress(),
                    run.chapters_done,
                    run.chapters_total,
                    run.attempt
                );
                println!(
                    "  story: {} (exists: {})",
                    run.story_id,
                    report.story_exists.unwrap_or(false)
                );
                if let Some(owner) = &report.lease_owner {
                    println!(
                        "  lease: {owner}, {}s left; heartbeat {}s ago",
                        report.lease_remaining_s.unwrap_or(0),
                        report.heartbeat_age_s.unwrap_or(0)
                    );
                }
                if let Some(code) = run.error_code {
                    println!(
                        "  error: {code}: {}",
                        run.error_message.as_deref().unwrap_or("")
                    );
                }
            }
            if !report.last_events.is_empty() {
                println!("events:");
                for event in &report.last_events {
                    println!("  {} {:<10} {}", event.at, event.kind, event.message);
                }
            }
            if let Some(chapters) = &report.chapters {
                println!("chapters:");
                for c in chapters {
                    println!("  {:>3}. {} ({} words)", c.number, c.title, c.word_count);
                }
            }
            println!("findings:");
            print_findings(&report.findings, &report.recommendations);
        }
        return Ok(problems_exit(&report));
    }
    if let Some(id) = story {
        let report = maintenance::diagnose_story(app, &StoryId::parse(&id)?)?;
        if args.json {
            print_json(&report);
        } else {
            println!("story {} (exists: {})", report.story_id, report.exists);
            if let (Some(title), Some(count), Some(source)) = (
                &report.title,
                report.chapter_count,
                report.chapter_count_source,
            ) {
                println!(
                    "  title: {title}\n  chapters: {} saved of {count} ({})",
                    report.chapters_saved,
                    source.as_str()
                );
            }
            println!("  runs by status: {}", compact(&report.runs_by_status));
            for run in &report.runs {
                println!("  run {} {}", run.id, run.status);
            }
            println!("findings:");
            print_findings(&report.findings, &report.recommendations);
        }
        return Ok(problems_exit(&report));
    }
    let report = maintenance::diagnose_all(app)?;
    if args.json {
        print_json(&report);
    } else {
        println!("runs by status: {}", compact(&report.runs_by_status));
        println!("orphaned runs: {}", report.orphaned_runs.len());
        for orphan in report
            .orphaned_runs
            .iter()
            .take(if args.verbose { usize::MAX } else { 20 })
        {
            println!(
                "  run {} -> missing story {} ({})",
                orphan.id, orphan.story_id, orphan.status
            );
        }
        println!("stuck runs: {}", report.stuck_runs.len());
        println!("failed runs by code: {}", compact(&report.failed_by_code));
        println!(
            "stories with the default chapter count: {}",
            report.stories_with_default_count.len()
        );
        println!("findings:");
        print_findings(&report.findings, &report.recommendations);
    }
    Ok(problems_exit(&report))
}

fn health_check(app: &App, args: HealthCheckArgs) -> Result<u8> {
    let progress = spinner("checking the database");
    let report = maintenance::health_check(
        app,
        HealthOptions {
            fix: args.fix,
            full: args.full,
        },
    )?;
    progress.finish_and_clear();
    if args.json {
        print_json(&report);
    } else {
        println!(
            "schema version {}; integrity {}",
            report.schema_version,
            if report.integrity_ok { "ok" } else { "FAILED" }
        );
        if report.problems.is_empty() {
            println!("no problems found");
        }
        for p in &report.problems {
            println!(
                "  {}: {} ({})",
                p.code,
                p.message,
                if p.fixable {
                    "--fix repairs this"
                } else {
                    "not fixable automatically"
                }
            );
        }
        if let Some(backup) = &report.backup {
            println!("backup written first: {backup}");
        }
        for change in &report.fixed {
            println!("fixed: {change}");
        }
    }
    Ok(if report.healthy {
        exit::OK
    } else {
        exit::PROBLEMS_FOUND
    })
}

fn fix_orphans(app: &App, args: FixOrphansArgs) -> Result<u8> {
    let progress = spinner(if args.dry_run {
        "looking for orphans"
    } else {
        "removing orphans"
    });
    let report = maintenance::fix_orphans(app, args.dry_run)?;
    progress.finish_and_clear();
    if args.json {
        print_json(&report);
    } else {
        for orphan in &report.orphaned_runs {
            println!(
                "orphaned run {} -> missing story {} ({})",
                orphan.id, orphan.story_id, orphan.status
            );
        }
        if let Some(backup) = &report.backup {
            println!("backup written first: {backup}");
        }
        println!("{}", report.summary);
    }
    Ok(exit::OK)
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
