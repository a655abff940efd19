//! Workflow runs: creation, the user's transitions (cancel, retry), the
//! worker's lease (claim, heartbeat, release, finish), chapter saves and
//! progress writes, and the event timeline.
//!
//! Every worker-side write is guarded by `lease_owner = ?` and
//! `status = running`: a worker that lost its run (cancelled, deleted, taken
//! over after its lease expired) changes nothing and learns it from the count
//! of changed rows.

use rusqlite::{Connection, OptionalExtension, params};

use super::model::{RUN_COLUMNS, Run, RunEvent};
use super::stories::story_exists;
use super::versions::{ChapterSource, VersionRecord, add_version};
use super::{NewChapter, RunId, RunStatus, Store, StoryId, word_count};
use crate::error::{Error, Result};
use crate::run::{EventKind, FailureCode, Step, Timestamp, WorkerId};

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub story_id: Option<StoryId>,
    pub limit: u32,
    pub offset: u32,
}

/// A run a worker now holds.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    pub run: Run,
    /// It was `running` under a worker whose lease expired (a crash).
    pub recovered: bool,
}

/// Why a progress report was not applied (the contract's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The run failed; it must be retried, not advanced.
    RunFailed,
    /// The run is completed or cancelled.
    RunFinished,
    /// The run already reports as much or more.
    Stale,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::RunFailed => "run_failed",
            SkipReason::RunFinished => "run_finished",
            SkipReason::Stale => "stale",
        }
    }
}

pub(super) fn get_run(conn: &Connection, id: &RunId) -> Result<Option<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM workflow_runs WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], Run::from_row)
        .optional()?)
}

pub(super) fn add_event(
    conn: &Connection,
    run: &RunId,
    at: &Timestamp,
    kind: EventKind,
    message: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO run_events (run_id, at, kind, message) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![run, at, kind, message])?;
    Ok(())
}

fn active_run_of(conn: &Connection, story: &StoryId) -> Result<Option<RunId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM workflow_runs WHERE story_id = ?1 AND status IN (?2, ?3)")?
        .query_row(
            params![story, RunStatus::Pending, RunStatus::Running],
            |row| row.get(0),
        )
        .optional()?)
}

fn conflict_active(story: &StoryId, active: &RunId) -> Error {
    Error::Conflict {
        message: format!("story {story} already has an active run {active}"),
        details: serde_json::json!({ "story_id": story, "run_id": active }),
        hint: format!(
            "wait for run {active} to finish, or cancel it (POST /api/runs/{active}/cancel)"
        ),
    }
}

/// The monotonic progress write, shared by the engine's chapter saves and
/// external progress reports: it only ever raises `chapters_done`, and only on
/// an active run. A first report on a pending run starts it. With
/// `complete_at_total`, reaching the total completes the run.
///
/// One statement in the common case (a running run moving forward): that
/// statement sets no indexed column, which makes it twice as fast as one that
/// does (`status` is indexed twice). Starting or completing a run, or a
/// report that changes nothing, takes the second, general statement.
pub fn write_progress(
    conn: &Connection,
    run: &RunId,
    done: u32,
    total: u32,
    step: Option<&Step>,
    now: &Timestamp,
    complete_at_total: bool,
) -> Result<bool> {
    if !(complete_at_total && done >= total) {
        let advanced = conn
            .prepare_cached(
                "UPDATE workflow_runs SET chapters_done = ?2, chapters_total = ?3, step = coalesce(?4, step),
                     updated_at = ?5
                 WHERE id = ?1 AND status = ?6 AND chapters_done < ?2",
            )?
            .execute(params![run, done, total, step, now, RunStatus::Running])?;
        if advanced == 1 {
            return Ok(true);
        }
    }
    let changed = conn
        .prepare_cached(
            "UPDATE workflow_runs SET
                 chapters_done = ?2,
                 chapters_total = ?3,
                 step = coalesce(?4, step),
                 status = CASE WHEN ?6 AND ?2 >= ?3 THEN ?7 ELSE ?8 END,
                 finished_at = CASE WHEN ?6 AND ?2 >= ?3 THEN ?5 ELSE NULL END,
                 started_at = coalesce(started_at, ?5),
                 updated_at = ?5
             WHERE id = ?1
               AND (status = ?8 AND chapters_done < ?2
                    OR status = ?9 AND chapters_done <= ?2)",
        )?
        .execute(params![
            run,
            done,
            total,
            step,
            now,
            complete_at_total,
            RunStatus::Completed,
            RunStatus::Running,
            RunStatus::Pending,
        ])?;
    Ok(changed == 1)
}

/// Why [`write_progress`] changed nothing. A second statement, but only on
/// the skip path.
pub fn explain_skipped_progress(conn: &Connection, run: &RunId) -> Result<SkipReason> {
    let status: Option<RunStatus> = conn
        .prepare_cached("SELECT status FROM workflow_runs WHERE id = ?1")?
        .query_row([run], |row| row.get(0))
        .optional()?;
    match status {
        None => Err(Error::RunNotFound(run.clone())),
        Some(RunStatus::Failed) => Ok(SkipReason::RunFailed),
        Some(RunStatus::Completed | RunStatus::Cancelled) => Ok(SkipReason::RunFinished),
        Some(RunStatus::Pending | RunStatus::Running) => Ok(SkipReason::Stale),
    }
}

impl Store {
    /// Starts a run for a story that exists and has no active run; it stays
    /// `pending` until a worker claims it. Chapters already written count as
    /// done: a new run continues the book.
    pub fn create_run(&self, story: &StoryId, chapter_count: u32, scope: RunScope) -> Result<Run> {
        self.write(|tx| {
            if !story_exists(tx, story)? {
                return Err(Error::StoryNotFound(story.clone()));
            }
            if let Some(active) = active_run_of(tx, story)? {
                return Err(conflict_active(story, &active));
            }
            let (until, regenerate, total, message) = match scope {
                RunScope::Book => (None, None, chapter_count, format!("run created for {chapter_count} chapters")),
                RunScope::Until(n) => {
                    let until = n.min(chapter_count);
                    (Some(until), None, until, format!("run created for chapters up to {until} of {chapter_count}"))
                }
                RunScope::Rewrite(n) => {
                    let locked: Option<bool> = tx
                        .prepare_cached("SELECT locked FROM chapters WHERE story_id = ?1 AND number = ?2")?
                        .query_row(params![story, n], |row| row.get(0))
                        .optional()?;
                    match locked {
                        None => {
                            return Err(Error::validation(
                                "number",
                                format!("story {story} has no chapter {n} yet; write it with a run first"),
                            ));
                        }
                        Some(true) => {
                            return Err(Error::ChapterLocked { story: story.clone(), chapter: n });
                        }
                        Some(false) => {}
                    }
                    (None, Some(n), 1, format!("run created to rewrite chapter {n}"))
                }
            };
            let id = RunId::random();
            let now = self.now();
            tx.prepare_cached(
                "INSERT INTO workflow_runs (id, story_id, status, chapters_done, chapters_total,
                     until_chapter, regenerate_chapter, created_at, updated_at)
                 VALUES (?1, ?2, ?7,
                         CASE WHEN ?5 IS NULL
                              THEN (SELECT count(*) FROM chapters WHERE story_id = ?2 AND number <= ?3)
                              ELSE 0 END,
                         ?3, ?4, ?5, ?6, ?6)",
            )?
            .execute(params![id, story, total, until, regenerate, now, RunStatus::Pending])?;
            add_event(tx, &id, &now, EventKind::Created, &message)?;
            get_run(tx, &id)?.ok_or_else(|| Error::Internal(format!("run {id} vanished after insert")))
        })
    }

    pub fn run(&self, id: &RunId) -> Result<Run> {
        self.find_run(id)?
            .ok_or_else(|| Error::RunNotFound(id.clone()))
    }

    pub fn find_run(&self, id: &RunId) -> Result<Option<Run>> {
        get_run(&*self.conn()?, id)
    }

    /// Newest first; runs created in the same millisecond by rowid
    /// (insertion order).
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR story_id = ?2)
             ORDER BY created_at DESC, rowid DESC LIMIT ?3 OFFSET ?4"
        );
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![filter.status, filter.story_id, filter.limit, filter.offset],
            Run::from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Cancels an active run. A worker holding it stops at its next step.
    pub fn cancel_run(&self, id: &RunId) -> Result<Run> {
        self.write(|tx| {
            let run = get_run(tx, id)?.ok_or_else(|| Error::RunNotFound(id.clone()))?;
            if !run.status.is_active() {
                return Err(Error::Conflict {
                    message: format!(
                        "run {id} is {}; only pending or running runs can be cancelled",
                        run.status
                    ),
                    details: serde_json::json!({ "run_id": id, "status": run.status }),
                    hint: "it has already stopped; start a new run or retry a failed one".into(),
                });
            }
            let now = self.now();
            tx.prepare_cached(
                "UPDATE workflow_runs SET status = ?3, lease_owner = NULL, lease_expires_at = NULL,
                     finished_at = ?2, updated_at = ?2
                 WHERE id = ?1",
            )?
            .execute(params![id, now, RunStatus::Cancelled])?;
            add_event(tx, id, &now, EventKind::Cancelled, "cancelled by the user")?;
            get_run(tx, id)?.ok_or_else(|| Error::RunNotFound(id.clone()))
        })
    }

    /// Puts a failed or cancelled run back in the queue; it resumes after its
    /// last saved chapter.
    pub fn retry_run(&self, id: &RunId) -> Result<Run> {
        self.write(|tx| {
            let run = get_run(tx, id)?.ok_or_else(|| Error::RunNotFound(id.clone()))?;
            if !run.status.is_retriable() {
                return Err(Error::Conflict {
                    message: format!("run {id} is {}; only failed or cancelled runs can be retried", run.status),
                    details: serde_json::json!({ "run_id": id, "status": run.status }),
                    hint: "a pending or running run resumes by itself; a completed one has nothing left to do".into(),
                });
            }
            if !story_exists(tx, &run.story_id)? {
                return Err(Error::StoryNotFound(run.story_id.clone()));
            }
            if let Some(active) = active_run_of(tx, &run.story_id)? {
                return Err(conflict_active(&run.story_id, &active));
            }
            let now = self.now();
            tx.prepare_cached(
                "UPDATE workflow_runs SET status = ?3, attempt = 0, error_code = NULL, error_message = NULL,
                     lease_owner = NULL, lease_expires_at = NULL, finished_at = NULL, updated_at = ?2
                 WHERE id = ?1",
            )?
            .execute(params![id, now, RunStatus::Pending])?;
            let message = format!("retry requested; resumes after chapter {}", run.chapters_done);
            add_event(tx, id, &now, EventKind::Retry, &message)?;
            get_run(tx, id)?.ok_or_else(|| Error::RunNotFound(id.clone()))
        })
    }

    pub fn events(&self, id: &RunId) -> Result<Vec<RunEvent>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, at, kind, message FROM run_events WHERE run_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], RunEvent::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn add_event(&self, id: &RunId, kind: EventKind, message: &str) -> Result<()> {
        self.write_one(|conn| add_event(conn, id, &self.now(), kind, message))
    }

    /// Claims the oldest pending run, or else a running one whose lease has
    /// expired (its worker died). A recovered run past `max_attempts` claims
    /// is failed with `STUCK_TIMEOUT` instead of being run again. A run whose
    /// story is gone is claimed like any other: the worker's context check
    /// fails it with `STORY_NOT_FOUND` at once.
    pub fn claim_next_run(
        &self,
        owner: &WorkerId,
        lease_until: &Timestamp,
        max_attempts: u32,
    ) -> Result<Option<ClaimedRun>> {
        // Idle workers poll: look with a plain read before taking the write lock.
        let now = self.now();
        let claimable: bool = self
            .conn()?
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM workflow_runs WHERE status = ?2)
                     OR EXISTS (SELECT 1 FROM workflow_runs WHERE status = ?3 AND lease_expires_at < ?1)",
            )?
            .query_row(params![now, RunStatus::Pending, RunStatus::Running], |row| row.get(0))?;
        if !claimable {
            return Ok(None);
        }
        self.write(|tx| {
            let now = self.now();
            let pending_sql =
                format!("SELECT {RUN_COLUMNS} FROM workflow_runs WHERE status = ?1 ORDER BY created_at LIMIT 1");
            let expired_sql = format!(
                "SELECT {RUN_COLUMNS} FROM workflow_runs
                 WHERE status = ?2 AND lease_expires_at < ?1 ORDER BY created_at LIMIT 1"
            );
            let candidate = match tx.prepare_cached(&pending_sql)?.query_row([RunStatus::Pending], Run::from_row).optional()? {
                Some(run) => Some((run, false)),
                None => tx
                    .prepare_cached(&expired_sql)?
                    .query_row(params![now, RunStatus::Running], Run::from_row)
                    .optional()?
                    .map(|run| (run, true)),
            };
            let Some((run, recovered)) = candidate else { return Ok(None) };
            if recovered && run.attempt >= max_attempts {
                fail_stuck(tx, &run.id, &now, run.attempt)?;
                return Ok(None);
            }
            tx.prepare_cached(
                "UPDATE workflow_runs SET status = ?5, lease_owner = ?2, lease_expires_at = ?3,
                     heartbeat_at = ?4, attempt = attempt + 1, started_at = coalesce(started_at, ?4),
                     updated_at = ?4
                 WHERE id = ?1",
            )?
            .execute(params![run.id, owner, lease_until, now, RunStatus::Running])?;
            if recovered {
                let message = format!(
                    "taken over from {} whose lease expired; resumes after chapter {}",
                    run.lease_owner.as_ref().map_or("an unknown worker", WorkerId::as_str),
                    run.chapters_done
                );
                add_event(tx, &run.id, &now, EventKind::Recovered, &message)?;
            }
            add_event(tx, &run.id, &now, EventKind::Claimed, &format!("claimed by {owner} (attempt {})", run.attempt + 1))?;
            let run = get_run(tx, &run.id)?.ok_or_else(|| Error::RunNotFound(run.id.clone()))?;
            Ok(Some(ClaimedRun { run, recovered }))
        })
    }

    /// Extends the lease; false when the worker no longer holds the run.
    pub fn heartbeat(&self, id: &RunId, owner: &WorkerId, lease_until: &Timestamp) -> Result<bool> {
        let changed = self.write_one(|conn| {
            Ok(conn
                .prepare_cached(
                    "UPDATE workflow_runs SET lease_expires_at = ?3, heartbeat_at = ?4
                     WHERE id = ?1 AND lease_owner = ?2 AND status = ?5",
                )?
                .execute(params![
                    id,
                    owner,
                    lease_until,
                    self.now(),
                    RunStatus::Running
                ])?)
        })?;
        Ok(changed == 1)
    }

    /// Records the step a worker is on; false when it no longer holds the run.
    pub fn set_step(&self, id: &RunId, owner: &WorkerId, step: &Step, total: u32) -> Result<bool> {
        self.write(|tx| {
            let now = self.now();
            let changed = tx
                .prepare_cached(
                    "UPDATE workflow_runs SET step = ?3, chapters_total = ?4, updated_at = ?5
                     WHERE id = ?1 AND lease_owner = ?2 AND status = ?6",
                )?
                .execute(params![id, owner, step, total, now, RunStatus::Running])?;
            if changed == 1 {
                add_event(tx, id, &now, EventKind::Step, &step.text())?;
            }
            Ok(changed == 1)
        })
    }

    /// Saves one chapter and the run's progress (`done` of `total`) in one
    /// transaction, so a crash loses at most the chapter being written and
    /// none is saved twice. A new chapter is inserted (the primary key refuses
    /// a second copy); a rewrite replaces the existing one. False (nothing
    /// saved) when the worker no longer holds the run; `StoryNotFound` when
    /// the story is gone.
    #[allow(clippy::too_many_arguments)]
    pub fn save_chapter(
        &self,
        id: &RunId,
        owner: &WorkerId,
        story: &StoryId,
        chapter: &NewChapter,
        save: ChapterSave,
        done: u32,
        total: u32,
    ) -> Result<bool> {
        self.write(|tx| {
            let now = self.now();
            // Held, and is the story still there? It can vanish under a run
            // only behind storyflow's back (deleted with foreign keys off).
            let story_exists: Option<bool> = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM stories WHERE id = ?3) FROM workflow_runs
                     WHERE id = ?1 AND lease_owner = ?2 AND status = ?4",
                )?
                .query_row(params![id, owner, story, RunStatus::Running], |row| row.get(0))
                .optional()?;
            match story_exists {
                None => return Ok(false),
                Some(false) => return Err(Error::StoryNotFound(story.clone())),
                Some(true) => {}
            }
            let words = word_count(&chapter.content);
            let (what, source) = match save {
                ChapterSave::New => {
                    tx.prepare_cached(
                        "INSERT INTO chapters (story_id, number, title, content, word_count, summary, run_id, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![story, chapter.number, chapter.title, chapter.content, words, chapter.summary, id, now])?;
                    ("saved", ChapterSource::Generated)
                }
                ChapterSave::Rewrite => {
                    // A chapter locked after the rewrite was queued stays as it is.
                    let changed = tx.prepare_cached(
                        "UPDATE chapters SET title = ?3, content = ?4, word_count = ?5, summary = ?6, run_id = ?7,
                             updated_at = ?8
                         WHERE story_id = ?1 AND number = ?2 AND locked = 0",
                    )?
                    .execute(params![story, chapter.number, chapter.title, chapter.content, words, chapter.summary, id, now])?;
                    if changed == 0 {
                        return Err(Error::ChapterLocked { story: story.clone(), chapter: chapter.number });
                    }
                    ("rewritten", ChapterSource::Regenerated)
                }
            };
            add_version(
                tx,
                &self.stock_phrases,
                &VersionRecord {
                    story,
                    number: chapter.number,
                    source,
                    title: &chapter.title,
                    content: &chapter.content,
                    run_id: Some(id),
                    at: &now,
                },
            )?;
            write_progress(tx, id, done, total, None, &now, false)?;
            let message = format!("chapter {} {what} ({words} words): {}", chapter.number, chapter.title);
            add_event(tx, id, &now, EventKind::Chapter, &message)?;
            Ok(true)
        })
    }

    /// Ends a run the worker holds: completed, or failed with a code.
    pub fn finish_run(
        &self,
        id: &RunId,
        owner: &WorkerId,
        outcome: RunOutcome<'_>,
    ) -> Result<bool> {
        self.write(|tx| {
            let now = self.now();
            let (status, kind, code, message, last_step) = match outcome {
                RunOutcome::Completed => {
                    (RunStatus::Completed, EventKind::Completed, None, None, Some(Step::Finalize))
                }
                RunOutcome::Failed { code, message } => {
                    (RunStatus::Failed, EventKind::Failed, Some(code), Some(message), None)
                }
            };
            let completed = status == RunStatus::Completed;
            let changed = tx
                .prepare_cached(
                    "UPDATE workflow_runs SET status = ?3, error_code = ?4, error_message = ?5,
                         lease_owner = NULL, lease_expires_at = NULL, finished_at = ?6, updated_at = ?6,
                         step = coalesce(?7, step),
                         -- A completed run reports the chapters the story has, whoever wrote
                         -- them (an older run retried after a newer one finished the book).
                         chapters_done = CASE
                             WHEN ?8 AND regenerate_chapter IS NOT NULL THEN chapters_total
                             WHEN ?8
                             THEN (SELECT count(*) FROM chapters c
                                   WHERE c.story_id = workflow_runs.story_id AND c.number <= chapters_total)
                             ELSE chapters_done END
                     WHERE id = ?1 AND lease_owner = ?2 AND status = ?9",
                )?
                .execute(params![id, owner, status, code, message, now, last_step, completed, RunStatus::Running])?;
            if changed == 1 {
                let text = match (code, message) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    _ => "all chapters written".to_string(),
                };
                add_event(tx, id, &now, kind, &text)?;
            }
            Ok(changed == 1)
        })
    }

    /// Hands a run back to the queue (graceful shutdown); it resumes later
    /// after its last saved chapter.
    pub fn release_run(&self, id: &RunId, owner: &WorkerId) -> Result<bool> {
        self.write(|tx| {
            let now = self.now();
            let changed = tx
                .prepare_cached(
                    "UPDATE workflow_runs SET status = ?4, lease_owner = NULL, lease_expires_at = NULL,
                         attempt = max(attempt - 1, 0), updated_at = ?3
                     WHERE id = ?1 AND lease_owner = ?2 AND status = ?5",
                )?
                .execute(params![id, owner, now, RunStatus::Pending, RunStatus::Running])?;
            if changed == 1 {
                add_event(tx, id, &now, EventKind::Released, &format!("released by {owner} at shutdown"))?;
            }
            Ok(changed == 1)
        })
    }
}

/// Which chapters a new run writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunScope {
    /// Every chapter not yet written.
    #[default]
    Book,
    /// The chapters not yet written, up to and including this one.
    Until(u32),
    /// This chapter again, and nothing else.
    Rewrite(u32),
}

/// Whether a saved chapter is new or replaces one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChapterSave {
    New,
    Rewrite,
}

/// How a worker ends a run.
#[derive(Debug, Clone, Copy)]
pub enum RunOutcome<'a> {
    Completed,
    Failed { code: FailureCode, message: &'a str },
}

pub(super) fn fail_active(
    conn: &Connection,
    id: &RunId,
    code: FailureCode,
    message: &str,
    now: &Timestamp,
) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE workflow_runs SET status = ?5, error_code = ?2, error_message = ?3,
                 lease_owner = NULL, lease_expires_at = NULL, finished_at = ?4, updated_at = ?4
             WHERE id = ?1 AND status IN (?6, ?7)",
        )?
        .execute(params![
            id,
            code,
            message,
            now,
            RunStatus::Failed,
            RunStatus::Pending,
            RunStatus::Running
        ])?;
    Ok(changed == 1)
}

pub(super) fn fail_stuck(
    conn: &Connection,
    id: &RunId,
    now: &Timestamp,
    attempts: u32,
) -> Result<()> {
    let message = format!("the run stopped responding {attempts} times; giving up");
    let code = FailureCode::StuckTimeout;
    if fail_active(conn, id, code, &message, now)? {
        add_event(
            conn,
            id,
            now,
            EventKind::Failed,
            &format!("{code}: {message}"),
        )?;
    }
    Ok(())
}
