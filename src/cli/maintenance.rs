//! `diagnose`, `health-check`, `fix-orphans` and `backup`: looking after the
//! database. Each report has its own printer; the exit code says whether
//! problems were found.

use std::path::Path;

use clap::Args;

use super::{compact, print_json, spinner};
use crate::app::App;
use crate::error::{Result, exit};
use crate::maintenance::{
    self, DatabaseReport, Finding, HealthOptions, Report, RunReport, StoryReport,
};

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
    /// Print the report as JSON.
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
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FixOrphansArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn backup(db: &Path, path: &Path) -> Result<u8> {
    let store = super::open_app(db, false)?.store;
    store.backup(path)?;
    println!("backed up {} to {}", db.display(), path.display());
    Ok(exit::OK)
}

fn print_findings(findings: &[Finding], recommendations: &[String]) {
    println!("findings:");
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

pub(super) fn diagnose(app: &App, args: DiagnoseArgs) -> Result<u8> {
    let DiagnoseTarget { run, story, .. } = args.target;
    if let Some(id) = run {
        let report = maintenance::diagnose_run(app, &super::run_id(app, &id)?, args.verbose)?;
        print_report(&report, args.json, print_run_report);
        return Ok(problems_exit(&report));
    }
    if let Some(id) = story {
        let report = maintenance::diagnose_story(app, &super::story_id(app, &id)?)?;
        print_report(&report, args.json, print_story_report);
        return Ok(problems_exit(&report));
    }
    let report = maintenance::diagnose_all(app)?;
    print_report(&report, args.json, |report| {
        print_all_report(report, args.verbose)
    });
    Ok(problems_exit(&report))
}

fn print_report<R: serde::Serialize>(report: &R, json: bool, text: impl FnOnce(&R)) {
    if json {
        print_json(report);
    } else {
        text(report);
    }
}

fn print_run_report(report: &RunReport) {
    println!("run {}", report.run_id);
    if let Some(run) = &report.run {
        println!(
            "  status: {}  step: {}  progress: {}% ({}/{})  attempt: {}",
            run.status,
            super::run::step_text(run),
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
    print_findings(&report.findings, &report.recommendations);
}

fn print_story_report(report: &StoryReport) {
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
    print_findings(&report.findings, &report.recommendations);
}

fn print_all_report(report: &DatabaseReport, verbose: bool) {
    println!("runs by status: {}", compact(&report.runs_by_status));
    println!("orphaned runs: {}", report.orphaned_runs.len());
    // Without --verbose a database full of orphans would drown the summary.
    let shown = if verbose { usize::MAX } else { 20 };
    for orphan in report.orphaned_runs.iter().take(shown) {
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
    print_findings(&report.findings, &report.recommendations);
}

pub(super) fn health_check(app: &App, args: HealthCheckArgs) -> Result<u8> {
    let progress = spinner("checking the database");
    let options = HealthOptions {
        fix: args.fix,
        full: args.full,
    };
    let report = maintenance::health_check(app, options)?;
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
            let fixable = if p.fixable {
                "--fix repairs this"
            } else {
                "not fixable automatically"
            };
            println!("  {}: {} ({fixable})", p.code, p.message);
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

pub(super) fn fix_orphans(app: &App, args: FixOrphansArgs) -> Result<u8> {
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
