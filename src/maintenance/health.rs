//! The health check: integrity, schema version, foreign keys, orphans,
//! stuck runs, chapter counts and the search index; and, when asked, the
//! repair of what is safe to repair.

use crate::backup::BackupReason;
use serde::Serialize;

use super::{idle_since, stories_with_default_count};
use crate::app::App;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::run::{RunId, StoryId};
use crate::store::{OrphanCounts, Run};

#[derive(Debug, Clone, Copy, Default)]
pub struct HealthOptions {
    pub fix: bool,
    /// `integrity_check` instead of `quick_check`.
    pub full: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
    pub count: u64,
    pub fixable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// True when no problem is left (after fixing, when asked to fix).
    pub healthy: bool,
    pub schema_version: i64,
    pub integrity_ok: bool,
    pub problems: Vec<Problem>,
    /// What `--fix` changed; empty without `--fix`.
    pub fixed: Vec<String>,
    /// Problems still present after the fix (all of them without `--fix`).
    pub remaining: Vec<Problem>,
    /// The backup written before the fix changed anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

/// What the health check learns from indexes (and the schema), apart from
/// the integrity check.
struct IndexedFindings {
    orphans: OrphanCounts,
    foreign_keys: Vec<String>,
    stuck: Vec<Run>,
    defaults: Vec<StoryId>,
    wrong_totals: Vec<(RunId, u32, u32)>,
    /// False when the search index disagrees with the chapters; rebuilding
    /// it from them is always safe (it holds nothing of its own).
    search_index_agrees: bool,
}

/// The first `n` lines of a finding, for a one-line problem message.
fn first_few(lines: &[String], n: usize) -> String {
    lines
        .iter()
        .take(n)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ")
}

fn indexed_findings(app: &App) -> Result<IndexedFindings> {
    let store = &app.store;
    Ok(IndexedFindings {
        orphans: store.orphan_counts()?,
        foreign_keys: store.uncounted_foreign_key_violations()?,
        stuck: store.stuck_runs(&idle_since(app))?,
        defaults: stories_with_default_count(app)?,
        wrong_totals: store.runs_with_wrong_totals()?,
        search_index_agrees: store.search_index_agrees()?,
    })
}

pub fn health_check(app: &App, options: HealthOptions) -> Result<HealthReport> {
    let store = &app.store;
    let (integrity, indexed) = read_checks(app, options.full);
    let integrity = integrity?;
    let schema_version = store.schema_version()?;
    if !integrity.is_empty() {
        return Ok(damaged(schema_version, &integrity));
    }
    let found = match indexed {
        Some(found) => found?,
        None => indexed_findings(app)?,
    };
    let problems = problems_of(&found, schema_version);
    let mut backup = None;
    let fixed = if options.fix && problems.iter().any(|p| p.fixable) {
        backup = Some(app.backup_before(BackupReason::HealthFix)?);
        repair(app, &found)?
    } else {
        Vec::new()
    };
    let remaining: Vec<Problem> = if options.fix {
        problems.iter().filter(|p| !p.fixable).cloned().collect()
    } else {
        problems.clone()
    };
    Ok(HealthReport {
        healthy: remaining.is_empty(),
        schema_version,
        integrity_ok: true,
        problems,
        fixed,
        remaining,
        backup,
    })
}

/// The integrity check's problems, and (when the pool lends two readers)
/// the indexed findings read beside it.
///
/// The integrity check reads the whole file and takes longer than all the
/// indexed checks together, so they run beside it on a second read
/// connection. Their result waits for its verdict: nothing is reported
/// from, or fixed in, a damaged file (where they may well fail).
fn read_checks(app: &App, full: bool) -> (Result<Vec<String>>, Option<Result<IndexedFindings>>) {
    let store = &app.store;
    if !store.concurrent_reads() {
        // With one reader they would only queue for its connection.
        return (store.integrity_problems(full), None);
    }
    std::thread::scope(|scope| {
        let integrity = scope.spawn(|| store.integrity_problems(full));
        let indexed = indexed_findings(app);
        let integrity = integrity
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (integrity, Some(indexed))
    })
}

/// The report on a damaged file: the damage, and nothing touched.
fn damaged(schema_version: i64, integrity: &[String]) -> HealthReport {
    let problems = vec![Problem {
        code: "INTEGRITY",
        message: format!("the database file is damaged: {}", first_few(integrity, 5)),
        count: integrity.len() as u64,
        fixable: false,
    }];
    HealthReport {
        healthy: false,
        schema_version,
        integrity_ok: false,
        remaining: problems.clone(),
        problems,
        fixed: vec!["nothing: the integrity check failed, so the database was left untouched; restore a backup".into()],
        backup: None,
    }
}

/// A count of `what`, as a problem when there are any.
fn counted(code: &'static str, count: usize, what: &str, fixable: bool) -> Option<Problem> {
    (count > 0).then(|| Problem {
        code,
        message: format!("{count} {what}"),
        count: count as u64,
        fixable,
    })
}

fn problems_of(found: &IndexedFindings, schema_version: i64) -> Vec<Problem> {
    let mut problems = Vec::new();
    if schema_version != crate::store::SCHEMA_VERSION {
        problems.push(Problem {
            code: "SCHEMA_VERSION",
            message: format!(
                "schema version {schema_version}, expected {}",
                crate::store::SCHEMA_VERSION
            ),
            count: 1,
            fixable: false,
        });
    }
    let keys = &found.foreign_keys;
    let what = format!("rows break a foreign key: {}", first_few(keys, 3));
    problems.extend(counted("FOREIGN_KEYS", keys.len(), &what, false));
    push_orphan_problems(&mut problems, &found.orphans);
    let stuck = "runs are running with an expired lease";
    problems.extend(counted("STUCK_RUNS", found.stuck.len(), stuck, true));
    let defaults = "stories have no usable chapter count and fall back to the default";
    problems.extend(counted(
        "DEFAULT_CHAPTER_COUNT",
        found.defaults.len(),
        defaults,
        true,
    ));
    let totals = "finished runs report a chapter count that disagrees with the chapters saved";
    problems.extend(counted(
        "WRONG_TOTALS",
        found.wrong_totals.len(),
        totals,
        true,
    ));
    if !found.search_index_agrees {
        problems.push(Problem {
            code: "SEARCH_INDEX",
            message:
                "the search index disagrees with the chapters or the bible; search may miss or misplace text"
                    .into(),
            count: 1,
            fixable: true,
        });
    }
    problems
}

/// Repairs what is safe to repair; returns what it changed.
fn repair(app: &App, found: &IndexedFindings) -> Result<Vec<String>> {
    let store = &app.store;
    let mut fixed = Vec::new();
    if found.orphans.total() > 0 {
        let removed = store.remove_orphans()?;
        Metrics::add(&app.metrics.failed_runs_cleaned, removed.runs);
        fixed.push(format!(
            "removed {} orphaned runs, {} orphaned chapters and {} orphaned events",
            removed.runs, removed.chapters, removed.events
        ));
    }
    if !found.stuck.is_empty() {
        let (requeued, failed) =
            store.recover_stuck_runs(&idle_since(app), app.config.max_attempts)?;
        Metrics::add(&app.metrics.runs_recovered, requeued.len() as u64);
        fixed.push(format!(
            "re-queued {} stuck runs; failed {} that had used up their attempts",
            requeued.len(),
            failed.len()
        ));
    }
    if !found.defaults.is_empty() {
        let default = app.counts.default_count();
        let set = store.set_default_chapter_counts(&found.defaults, default)?;
        found
            .defaults
            .iter()
            .for_each(|id| app.counts.invalidate(id));
        fixed.push(format!(
            "set an explicit chapter count of {default} on {set} stories"
        ));
    }
    if !found.wrong_totals.is_empty() {
        let ids: Vec<RunId> = found
            .wrong_totals
            .iter()
            .map(|(id, _, _)| id.clone())
            .collect();
        let changed = store.recompute_totals(&ids)?;
        fixed.push(format!(
            "recomputed chapters_done of {changed} runs from their saved chapters"
        ));
    }
    if !found.search_index_agrees {
        store.rebuild_search_index()?;
        fixed.push("rebuilt the search index from the chapters".into());
    }
    Ok(fixed)
}

fn push_orphan_problems(problems: &mut Vec<Problem>, orphans: &OrphanCounts) {
    for (code, count, what) in [
        (
            "ORPHANED_RUNS",
            orphans.runs,
            "runs point at stories that do not exist",
        ),
        (
            "ORPHANED_CHAPTERS",
            orphans.chapters,
            "chapters belong to stories that do not exist",
        ),
        (
            "ORPHANED_VERSIONS",
            orphans.versions,
            "chapter versions belong to stories that do not exist",
        ),
        (
            "ORPHANED_BIBLE_ENTRIES",
            orphans.bible_entries,
            "bible entries belong to stories that do not exist",
        ),
        (
            "ORPHANED_EVENTS",
            orphans.events,
            "events belong to orphaned or missing runs",
        ),
    ] {
        if count > 0 {
            problems.push(Problem {
                code,
                message: format!("{count} {what}"),
                count,
                fixable: true,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::AppSettings;
    use crate::store::Store;

    /// A database with an orphaned run and a broken foreign key that the
    /// orphan counts do not cover, written with foreign keys off.
    fn damaged_keys(path: &std::path::Path) {
        drop(Store::open(path, 1).expect("create"));
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             CREATE TABLE notes (id INTEGER PRIMARY KEY, story_id TEXT REFERENCES stories (id));
             INSERT INTO notes (id, story_id) VALUES (1, '00000000-0000-4000-8000-000000000009');
             INSERT INTO workflow_runs (id, story_id, status, created_at, updated_at)
                 VALUES ('10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000009',
                         'failed', 't', 't');",
        )
        .expect("damage");
    }

    #[test]
    fn an_emptied_search_index_is_a_fixable_problem_that_fix_rebuilds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.db");
        let store = Store::open(&path, 2).expect("open");
        let story = store
            .create_story(&crate::store::NewStory {
                title: "Tide".into(),
                chapter_count: Some(1),
                ..Default::default()
            })
            .expect("story");
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute(
            "INSERT INTO chapters (story_id, number, title, content, word_count, created_at)
             VALUES (?1, 1, 'One', 'The heron waited.', 3, 't')",
            [&story.id],
        )
        .expect("chapter");
        conn.execute_batch("INSERT INTO chapters_fts (chapters_fts) VALUES ('delete-all')")
            .expect("empty the index");
        let app = App::new(store, AppSettings::default());
        let report = health_check(&app, HealthOptions::default()).expect("health");
        let codes: Vec<&str> = report.problems.iter().map(|p| p.code).collect();
        assert_eq!(codes, ["SEARCH_INDEX"], "{:?}", report.problems);
        assert!(report.problems[0].fixable && !report.healthy);
        assert!(
            app.store
                .search("heron", None, 10)
                .expect("search")
                .is_empty()
        );
        let fix = HealthOptions {
            fix: true,
            ..Default::default()
        };
        let fixed = health_check(&app, fix).expect("fix");
        assert!(fixed.healthy, "{:?}", fixed.remaining);
        assert!(
            fixed.fixed.iter().any(|line| line.contains("search index")),
            "{:?}",
            fixed.fixed
        );
        assert_eq!(
            app.store.search("heron", None, 10).expect("search").len(),
            1
        );
        let again = health_check(&app, HealthOptions::default()).expect("health");
        assert!(again.problems.is_empty(), "{:?}", again.problems);
    }

    #[test]
    fn the_health_check_finds_the_same_with_one_reader_as_with_two() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.db");
        damaged_keys(&path);
        for readers in [1, 2] {
            let app = App::new(
                Store::open(&path, readers).expect("open"),
                AppSettings::default(),
            );
            let report = health_check(&app, HealthOptions::default()).expect("health");
            assert!(report.integrity_ok);
            let problems: Vec<(&str, u64)> =
                report.problems.iter().map(|p| (p.code, p.count)).collect();
            assert_eq!(
                problems,
                [("FOREIGN_KEYS", 1), ("ORPHANED_RUNS", 1)],
                "{readers} readers: {:?}",
                report.problems
            );
            assert_eq!(
                report.problems[0].message,
                "1 rows break a foreign key: notes row 1 -> stories"
            );
        }
    }
}
