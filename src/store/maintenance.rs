//! The queries behind diagnostics, the health check, the orphan clean-up and
//! the background sweep. Every scan is an indexed anti-join or a lookup by
//! status, so it stays fast on a million runs.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::model::{RUN_COLUMNS, Run};
use super::runs::{add_event, fail_stuck};
use super::{RunId, RunStatus, Store, StoryId};
use crate::error::Result;

/// A run whose story does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrphanRun {
    pub id: RunId,
    pub story_id: StoryId,
    pub status: RunStatus,
    pub error_code: Option<String>,
    pub created_at: String,
}

/// How much orphaned data there is (or was removed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OrphanCounts {
    pub runs: u64,
    pub active_runs: u64,
    pub chapters: u64,
    pub events: u64,
}

impl OrphanCounts {
    pub fn total(&self) -> u64 {
        self.runs + self.chapters + self.events
    }
}

/// A past sweep, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRecord {
    pub id: i64,
    pub started_at: String,
    pub duration_ms: u64,
    pub findings: Value,
    pub changes: Value,
}

const ORPHAN_RUNS_WHERE: &str = "NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = r.story_id)";

/// The story ids that runs point at and that do not exist. Grouping the
/// `workflow_runs_story` index first probes `stories` once per distinct
/// story rather than once per run: about twice as fast as the plain
/// anti-join on a million runs.
const MISSING_STORIES: &str = "SELECT story_id FROM workflow_runs GROUP BY story_id
     HAVING NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = workflow_runs.story_id)";

/// The same for chapters.
const MISSING_CHAPTER_STORIES: &str = "SELECT story_id FROM chapters GROUP BY story_id
     HAVING NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = chapters.story_id)";

/// Run ids that events point at and that do not exist.
const MISSING_EVENT_RUNS: &str = "SELECT run_id FROM run_events GROUP BY run_id
     HAVING NOT EXISTS (SELECT 1 FROM workflow_runs r WHERE r.id = run_events.run_id)";

fn count(conn: &Connection, sql: &str) -> Result<u64> {
    let n: i64 = conn.prepare_cached(sql)?.query_row([], |row| row.get(0))?;
    Ok(n.max(0) as u64)
}

fn orphan_counts(conn: &Connection) -> Result<OrphanCounts> {
    let (runs, active_runs): (i64, i64) = conn
        .prepare_cached(&format!(
            "SELECT count(*), coalesce(sum(status IN ('pending', 'running')), 0) FROM workflow_runs
             WHERE story_id IN ({MISSING_STORIES})"
        ))?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(OrphanCounts {
        runs: runs.max(0) as u64,
        active_runs: active_runs.max(0) as u64,
        chapters: count(
            conn,
            &format!("SELECT count(*) FROM chapters WHERE story_id IN ({MISSING_CHAPTER_STORIES})"),
        )?,
        events: count(
            conn,
            &format!(
                "SELECT count(*) FROM run_events
                 WHERE run_id IN ({MISSING_EVENT_RUNS})
                    OR run_id IN (SELECT id FROM workflow_runs WHERE story_id IN ({MISSING_STORIES}))"
            ),
        )?,
    })
}

impl Store {
    pub fn orphaned_runs(&self) -> Result<Vec<OrphanRun>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT id, story_id, status, error_code, created_at FROM workflow_runs
             WHERE story_id IN ({MISSING_STORIES}) ORDER BY created_at, id"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], |row| {
            Ok(OrphanRun {
                id: row.get(0)?,
                story_id: row.get(1)?,
                status: row.get(2)?,
                error_code: row.get(3)?,
                created_at: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn orphan_counts(&self) -> Result<OrphanCounts> {
        orphan_counts(&*self.conn()?)
    }

    /// Active runs whose story is gone become `failed` / `ORPHANED_RUN`.
    /// Nothing is deleted. Returns the runs marked.
    pub fn fail_active_orphans(&self) -> Result<Vec<RunId>> {
        self.write(|tx| {
            let now = self.now();
            let sql = format!(
                "UPDATE workflow_runs AS r SET status = 'failed', error_code = 'ORPHANED_RUN',
                     error_message = 'story ' || story_id || ' does not exist; the run cannot continue',
                     lease_owner = NULL, lease_expires_at = NULL, finished_at = ?1, updated_at = ?1
                 WHERE status IN ('pending', 'running') AND {ORPHAN_RUNS_WHERE}
                 RETURNING id, story_id"
            );
            let marked: Vec<(RunId, StoryId)> = tx
                .prepare_cached(&sql)?
                .query_map([&now], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (run, story) in &marked {
                add_event(tx, run, &now, "failed", &format!("ORPHANED_RUN: story {story} does not exist"))?;
            }
            Ok(marked.into_iter().map(|(run, _)| run).collect())
        })
    }

    /// Runs the given story id has, whether or not the story exists.
    pub fn runs_of_story(&self, story: &StoryId) -> Result<Vec<Run>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE story_id = ?1 ORDER BY created_at, id"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([story], Run::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Running runs whose lease expired, or (for external workers, which
    /// hold no lease) that have not reported for `idle_after`.
    pub fn stuck_runs(&self, idle_since: &str) -> Result<Vec<Run>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs
             WHERE status = 'running'
               AND (lease_expires_at < ?1 OR (lease_expires_at IS NULL AND updated_at < ?2))
             ORDER BY created_at"
        );
        let now = self.now();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![now, idle_since], Run::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Puts stuck runs back in the queue to resume, or fails them with
    /// `STUCK_TIMEOUT` once they have been claimed `max_attempts` times.
    /// Returns (re-queued, failed).
    pub fn recover_stuck_runs(
        &self,
        idle_since: &str,
        max_attempts: u32,
    ) -> Result<(Vec<RunId>, Vec<RunId>)> {
        let stuck = self.stuck_runs(idle_since)?;
        self.write(|tx| {
            let now = self.now();
            let (mut requeued, mut failed) = (Vec::new(), Vec::new());
            for run in stuck {
                if run.attempt >= max_attempts {
                    fail_stuck(tx, &run.id, &now, run.attempt)?;
                    failed.push(run.id);
                    continue;
                }
                let changed = tx
                    .prepare_cached(
                        "UPDATE workflow_runs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                             updated_at = ?2
                         WHERE id = ?1 AND status = 'running' AND lease_owner IS ?3",
                    )?
                    .execute(params![run.id, now, run.lease_owner])?;
                if changed == 1 {
                    let message = format!(
                        "re-queued: {} stopped responding; resumes after chapter {}",
                        run.lease_owner.as_deref().unwrap_or("its external worker"),
                        run.chapters_done
                    );
                    add_event(tx, &run.id, &now, "recovered", &message)?;
                    requeued.push(run.id);
                }
            }
            Ok((requeued, failed))
        })
    }

    /// Removes orphaned runs, chapters and events in one transaction, and
    /// returns what was removed.
    pub fn remove_orphans(&self) -> Result<OrphanCounts> {
        self.write(|tx| {
            let found = orphan_counts(tx)?;
            tx.execute_batch(&format!(
                "DELETE FROM run_events WHERE run_id IN ({MISSING_EVENT_RUNS})
                    OR run_id IN (SELECT id FROM workflow_runs WHERE story_id IN ({MISSING_STORIES}));
                 DELETE FROM chapters WHERE story_id IN ({MISSING_CHAPTER_STORIES});
                 DELETE FROM workflow_runs WHERE story_id IN ({MISSING_STORIES});"
            ))?;
            Ok(found)
        })
    }

    /// Stories with no explicit count, and their outlines, to judge whether
    /// the count falls back to the default.
    pub fn stories_without_explicit_count(&self) -> Result<Vec<(StoryId, String)>> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached("SELECT id, outline FROM stories WHERE chapter_count IS NULL")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets an explicit chapter count on stories that have none.
    pub fn set_default_chapter_counts(&self, stories: &[StoryId], count: u32) -> Result<usize> {
        self.write(|tx| {
            let now = self.now();
            let mut stmt = tx.prepare_cached(
                "UPDATE stories SET chapter_count = ?2, updated_at = ?3 WHERE id = ?1 AND chapter_count IS NULL",
            )?;
            let mut changed = 0;
            for story in stories {
                changed += stmt.execute(params![story, count, now])?;
            }
            Ok(changed)
        })
    }

    /// Finished runs whose `chapters_done` disagrees with the chapters saved,
    /// as (run, chapters done, chapters saved).
    pub fn runs_with_wrong_totals(&self) -> Result<Vec<(RunId, u32, u32)>> {
        self.runs_with_wrong_totals_of(None)
    }

    /// [`Store::runs_with_wrong_totals`], of one story or of all. A run
    /// disagrees when it claims more chapters than are saved, or when it
    /// completed and does not account for exactly the chapters saved. A
    /// failed or cancelled run that a later run continued has fewer done than
    /// saved: that is history, not damage. A rewrite of one chapter counts
    /// that chapter only, and is left out.
    pub fn runs_with_wrong_totals_of(
        &self,
        story: Option<&StoryId>,
    ) -> Result<Vec<(RunId, u32, u32)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT r.id, r.chapters_done, saved FROM (
                 SELECT r.id, r.status, r.chapters_done,
                        (SELECT count(*) FROM chapters c WHERE c.story_id = r.story_id AND c.number <= r.chapters_total) AS saved
                 FROM workflow_runs r
                 WHERE r.status IN ('completed', 'failed', 'cancelled')
                   AND r.regenerate_chapter IS NULL
                   AND (?1 IS NULL OR r.story_id = ?1)
                   AND EXISTS (SELECT 1 FROM stories s WHERE s.id = r.story_id)
             ) AS r WHERE r.chapters_done > saved OR (r.status = 'completed' AND r.chapters_done != saved)",
        )?;
        let rows = stmt.query_map([story], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets each finished run's `chapters_done` to the chapters saved.
    pub fn recompute_totals(&self, runs: &[RunId]) -> Result<usize> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE workflow_runs SET chapters_done =
                     (SELECT count(*) FROM chapters c WHERE c.story_id = workflow_runs.story_id
                         AND c.number <= workflow_runs.chapters_total)
                 WHERE id = ?1 AND status IN ('completed', 'failed', 'cancelled') AND regenerate_chapter IS NULL",
            )?;
            let mut changed = 0;
            for run in runs {
                changed += stmt.execute([run])?;
            }
            Ok(changed)
        })
    }

    /// `PRAGMA quick_check` (or `integrity_check` when `full`): the problems
    /// found, empty when the file is sound.
    pub fn integrity_problems(&self, full: bool) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let sql = if full {
            "PRAGMA integrity_check"
        } else {
            "PRAGMA quick_check"
        };
        let mut stmt = conn.prepare(sql)?;
        let rows: Vec<String> = stmt
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows.into_iter().filter(|line| line != "ok").collect())
    }

    /// Rows that break a foreign key (only possible when written with
    /// foreign keys off), as `table rowid -> parent`.
    pub fn foreign_key_violations(&self) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
        let rows = stmt.query_map([], |row| {
            let table: String = row.get(0)?;
            let rowid: Option<i64> = row.get(1)?;
            let parent: String = row.get(2)?;
            Ok(format!(
                "{table} row {} -> {parent}",
                rowid.map_or("?".into(), |r| r.to_string())
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn()?
            .query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }

    pub fn run_counts_by_status(&self) -> Result<Vec<(RunStatus, u64)>> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached("SELECT status, count(*) FROM workflow_runs GROUP BY status")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// (pending, running): two short ranges of the status index.
    pub fn active_run_counts(&self) -> Result<(u64, u64)> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached("SELECT count(*) FROM workflow_runs WHERE status = ?1")?;
        let pending: i64 = stmt.query_row([RunStatus::Pending], |row| row.get(0))?;
        let running: i64 = stmt.query_row([RunStatus::Running], |row| row.get(0))?;
        Ok((pending.max(0) as u64, running.max(0) as u64))
    }

    pub fn failed_runs_by_code(&self) -> Result<Vec<(String, u64)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT coalesce(error_code, 'UNKNOWN'), count(*) FROM workflow_runs
             WHERE status = 'failed' GROUP BY 1 ORDER BY 2 DESC",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn record_sweep(
        &self,
        started_at: &str,
        duration_ms: u64,
        findings: &Value,
        changes: &Value,
    ) -> Result<()> {
        self.write_one(|conn| {
            conn.prepare_cached("INSERT INTO sweeps (started_at, duration_ms, findings, changes) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![started_at, duration_ms as i64, findings.to_string(), changes.to_string()])?;
            Ok(())
        })
    }

    pub fn last_sweep(&self) -> Result<Option<SweepRecord>> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached("SELECT id, started_at, duration_ms, findings, changes FROM sweeps ORDER BY id DESC LIMIT 1")?
            .query_row([], |row| {
                let findings: String = row.get(3)?;
                let changes: String = row.get(4)?;
                Ok(SweepRecord {
                    id: row.get(0)?,
                    started_at: row.get(1)?,
                    duration_ms: row.get::<_, i64>(2)?.max(0) as u64,
                    findings: serde_json::from_str(&findings).unwrap_or(Value::Null),
                    changes: serde_json::from_str(&changes).unwrap_or(Value::Null),
                })
            })
            .optional()?;
        Ok(row)
    }
}
