//! The queries behind diagnostics, the health check, the orphan clean-up and
//! the background sweep. Every scan is an indexed anti-join or a lookup by
//! status, so it stays fast on a million runs; the one exception is the
//! integrity check, which reads the whole file.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::model::{RUN_COLUMNS, Run};
use super::runs::{add_event, fail_stuck};
use super::{RunId, RunStatus, Store, StoryId};
use crate::error::Result;
use crate::run::{EventKind, FailureCode, Timestamp, WorkerId};

/// A run whose story does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrphanRun {
    pub id: RunId,
    pub story_id: StoryId,
    pub status: RunStatus,
    pub error_code: Option<FailureCode>,
    pub created_at: Timestamp,
}

/// How much orphaned data there is (or was removed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OrphanCounts {
    pub runs: u64,
    pub active_runs: u64,
    pub chapters: u64,
    /// Chapter versions whose story is gone.
    pub versions: u64,
    pub events: u64,
    /// Bible entries whose story is gone.
    pub bible_entries: u64,
}

impl OrphanCounts {
    pub fn total(&self) -> u64 {
        self.runs + self.chapters + self.versions + self.events + self.bible_entries
    }
}

/// A past sweep, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRecord {
    pub id: i64,
    pub started_at: Timestamp,
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

/// The same for chapter versions.
const MISSING_VERSION_STORIES: &str = "SELECT story_id FROM chapter_versions GROUP BY story_id
     HAVING NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = chapter_versions.story_id)";

/// The same for bible entries.
const MISSING_BIBLE_STORIES: &str = "SELECT story_id FROM bible_entries GROUP BY story_id
     HAVING NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = bible_entries.story_id)";

/// Run ids that events point at and that do not exist.
const MISSING_EVENT_RUNS: &str = "SELECT run_id FROM run_events GROUP BY run_id
     HAVING NOT EXISTS (SELECT 1 FROM workflow_runs r WHERE r.id = run_events.run_id)";

/// Finished runs whose `chapters_done` disagrees with their saved chapters,
/// and the chapters saved. SQLite tests correlated subqueries last, in the
/// order written, so the story probe (there only to leave orphans to their
/// own report) runs for the few runs that disagree rather than for every
/// finished run, and `saved` is counted once per run: 855 ms to 372 ms on a
/// million runs. Binds the finished statuses: ?1 completed, ?2 failed, ?3
/// cancelled (see [`FINISHED`]).
const WRONG_TOTALS: &str = "SELECT r.id, r.chapters_done,
            (SELECT count(*) FROM chapters c WHERE c.story_id = r.story_id AND c.number <= r.chapters_total) AS saved
     FROM workflow_runs r
     WHERE r.status IN (?1, ?2, ?3)
       AND r.regenerate_chapter IS NULL
       AND CASE WHEN r.status = ?1 THEN r.chapters_done != saved ELSE r.chapters_done > saved END
       AND EXISTS (SELECT 1 FROM stories s WHERE s.id = r.story_id)";

/// The statuses of a finished run, in the order the statements above bind them.
const FINISHED: [RunStatus; 3] = [
    RunStatus::Completed,
    RunStatus::Failed,
    RunStatus::Cancelled,
];

/// The foreign keys whose broken rows [`orphan_counts`] counts, as (child
/// table, child column, parent table, parent column).
const ORPHAN_COUNTED_KEYS: [(&str, &str, &str, &str); 5] = [
    ("workflow_runs", "story_id", "stories", "id"),
    ("bible_entries", "story_id", "stories", "id"),
    ("chapters", "story_id", "stories", "id"),
    ("chapter_versions", "story_id", "stories", "id"),
    ("run_events", "run_id", "workflow_runs", "id"),
];

/// One column pair of a foreign key: (parent table, child column, parent
/// column); the parent column is none when the key names the parent's
/// primary key implicitly.
type KeyColumn = (String, String, Option<String>);

/// The foreign keys of the schema that [`ORPHAN_COUNTED_KEYS`] leaves out:
/// the tables that have one, and the ids (`fkid`) of those keys. A key of
/// several columns, or one that names no parent column, is never counted.
fn uncounted_foreign_keys(conn: &Connection) -> Result<BTreeMap<String, BTreeSet<i64>>> {
    let mut keys: BTreeMap<(String, i64), Vec<KeyColumn>> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT m.name, f.id, f.\"table\", f.\"from\", f.\"to\"
         FROM sqlite_schema AS m, pragma_foreign_key_list(m.name) AS f
         WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            (row.get(0)?, row.get(1)?),
            (row.get(2)?, row.get(3)?, row.get(4)?),
        ))
    })?;
    for row in rows {
        let (key, columns) = row?;
        keys.entry(key).or_default().push(columns);
    }
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let mut uncounted: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for ((table, id), columns) in keys {
        let counted = match columns.as_slice() {
            [(parent, from, Some(to))] => ORPHAN_COUNTED_KEYS.iter().any(|(t, f, p, c)| {
                same(t, &table) && same(f, from) && same(p, parent) && same(c, to)
            }),
            _ => false,
        };
        if !counted {
            uncounted.entry(table).or_default().insert(id);
        }
    }
    Ok(uncounted)
}

fn orphan_counts(conn: &Connection) -> Result<OrphanCounts> {
    // One statement, so that the orphaned runs are found once and then
    // counted and followed to their events: 297 ms to 113 ms on a million
    // runs, where three statements each grouped the story index again.
    let sql = format!(
        "WITH orphans AS MATERIALIZED (
             SELECT id, status FROM workflow_runs WHERE story_id IN ({MISSING_STORIES}))
         SELECT (SELECT count(*) FROM orphans),
                (SELECT coalesce(sum(status IN (?1, ?2)), 0) FROM orphans),
                (SELECT count(*) FROM chapters WHERE story_id IN ({MISSING_CHAPTER_STORIES})),
                (SELECT count(*) FROM chapter_versions WHERE story_id IN ({MISSING_VERSION_STORIES})),
                (SELECT count(*) FROM run_events
                 WHERE run_id IN ({MISSING_EVENT_RUNS}) OR run_id IN (SELECT id FROM orphans)),
                (SELECT count(*) FROM bible_entries WHERE story_id IN ({MISSING_BIBLE_STORIES}))"
    );
    let active = [RunStatus::Pending, RunStatus::Running];
    let counts: [i64; 6] = conn.prepare_cached(&sql)?.query_row(active, |row| {
        Ok([
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
        ])
    })?;
    let [runs, active_runs, chapters, versions, events, bible_entries] =
        counts.map(|n| n.max(0) as u64);
    Ok(OrphanCounts {
        runs,
        active_runs,
        chapters,
        versions,
        events,
        bible_entries,
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
            let code = FailureCode::OrphanedRun;
            let sql = format!(
                "UPDATE workflow_runs AS r SET status = ?2, error_code = ?3,
                     error_message = 'story ' || story_id || ' does not exist; the run cannot continue',
                     lease_owner = NULL, lease_expires_at = NULL, finished_at = ?1, updated_at = ?1
                 WHERE status IN (?4, ?5) AND {ORPHAN_RUNS_WHERE}
                 RETURNING id, story_id"
            );
            let marked: Vec<(RunId, StoryId)> = tx
                .prepare_cached(&sql)?
                .query_map(
                    params![now, RunStatus::Failed, code, RunStatus::Pending, RunStatus::Running],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?
                .collect::<rusqlite::Result<_>>()?;
            for (run, story) in &marked {
                let message = format!("{code}: story {story} does not exist");
                add_event(tx, run, &now, EventKind::Failed, &message)?;
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
    pub fn stuck_runs(&self, idle_since: &Timestamp) -> Result<Vec<Run>> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs
             WHERE status = ?3
               AND (lease_expires_at < ?1 OR (lease_expires_at IS NULL AND updated_at < ?2))
             ORDER BY created_at"
        );
        let now = self.now();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![now, idle_since, RunStatus::Running], Run::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Puts stuck runs back in the queue to resume, or fails them with
    /// `STUCK_TIMEOUT` once they have been claimed `max_attempts` times.
    /// Returns (re-queued, failed).
    pub fn recover_stuck_runs(
        &self,
        idle_since: &Timestamp,
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
                        "UPDATE workflow_runs SET status = ?4, lease_owner = NULL, lease_expires_at = NULL,
                             updated_at = ?2
                         WHERE id = ?1 AND status = ?5 AND lease_owner IS ?3",
                    )?
                    .execute(params![run.id, now, run.lease_owner, RunStatus::Pending, RunStatus::Running])?;
                if changed == 1 {
                    let message = format!(
                        "re-queued: {} stopped responding; resumes after chapter {}",
                        run.lease_owner.as_ref().map_or("its external worker", WorkerId::as_str),
                        run.chapters_done
                    );
                    add_event(tx, &run.id, &now, EventKind::Recovered, &message)?;
                    requeued.push(run.id);
                }
            }
            Ok((requeued, failed))
        })
    }

    /// Removes orphaned runs, chapters, chapter versions and events in one transaction, and
    /// returns what was removed.
    pub fn remove_orphans(&self) -> Result<OrphanCounts> {
        self.write(|tx| {
            let found = orphan_counts(tx)?;
            tx.execute_batch(&format!(
                "DELETE FROM run_events WHERE run_id IN ({MISSING_EVENT_RUNS})
                    OR run_id IN (SELECT id FROM workflow_runs WHERE story_id IN ({MISSING_STORIES}));
                 DELETE FROM chapters WHERE story_id IN ({MISSING_CHAPTER_STORIES});
                 DELETE FROM chapter_versions WHERE story_id IN ({MISSING_VERSION_STORIES});
                 DELETE FROM bible_entries WHERE story_id IN ({MISSING_BIBLE_STORIES});
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
        let read = |row: &rusqlite::Row<'_>| Ok((row.get(0)?, row.get(1)?, row.get(2)?));
        let rows = match story {
            // A separate statement, so that one story's runs come from the
            // story index rather than from a scan of every run.
            Some(story) => conn
                .prepare_cached(&format!("{WRONG_TOTALS} AND r.story_id = ?4"))?
                .query_map(params![FINISHED[0], FINISHED[1], FINISHED[2], story], read)?
                .collect::<rusqlite::Result<_>>()?,
            None => conn
                .prepare_cached(WRONG_TOTALS)?
                .query_map(FINISHED, read)?
                .collect::<rusqlite::Result<_>>()?,
        };
        Ok(rows)
    }

    /// Sets each finished run's `chapters_done` to the chapters saved.
    pub fn recompute_totals(&self, runs: &[RunId]) -> Result<usize> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE workflow_runs SET chapters_done =
                     (SELECT count(*) FROM chapters c WHERE c.story_id = workflow_runs.story_id
                         AND c.number <= workflow_runs.chapters_total)
                 WHERE id = ?1 AND status IN (?2, ?3, ?4) AND regenerate_chapter IS NULL",
            )?;
            let mut changed = 0;
            for run in runs {
                changed += stmt.execute(params![run, FINISHED[0], FINISHED[1], FINISHED[2]])?;
            }
            Ok(changed)
        })
    }

    /// `PRAGMA quick_check` (or `integrity_check` when `full`): the problems
    /// found, empty when the file is sound. Takes a read connection of its
    /// own for as long as it reads the whole file.
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

    /// Whether the pool can lend two readers at once, so that a long read
    /// (the integrity check) can run beside others instead of making them
    /// wait for its connection.
    pub fn concurrent_reads(&self) -> bool {
        self.pool.max_size() >= 2
    }

    /// Rows that break a foreign key the orphan counts do not count (only
    /// possible when written with foreign keys off), as `table row N ->
    /// parent`.
    ///
    /// The keys come from the schema as it is in the file, so a key added by
    /// a later migration is checked until the orphan counts learn about it.
    /// Today every key is counted, so this reads the schema and scans no
    /// table: `PRAGMA foreign_key_check` over the whole file repeated the
    /// orphan anti-joins (0.5 s on a million runs).
    pub fn uncounted_foreign_key_violations(&self) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let mut found = Vec::new();
        for (table, keys) in uncounted_foreign_keys(&conn)? {
            // The check covers every key of the table; only the uncounted
            // ones are reported, so no broken row is reported twice.
            let mut stmt = conn.prepare_cached(
                "SELECT \"table\", \"rowid\", parent, fkid FROM pragma_foreign_key_check(?1)",
            )?;
            let rows = stmt.query_map([&table], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<i64>>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })?;
            for row in rows {
                let (table, rowid, parent, key) = row?;
                if keys.contains(&key) {
                    found.push(format!(
                        "{table} row {} -> {parent}",
                        rowid.map_or("?".into(), |r| r.to_string())
                    ));
                }
            }
        }
        Ok(found)
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

    /// Failed runs by their code; a run failed without one counts as
    /// `UNKNOWN`.
    pub fn failed_runs_by_code(&self) -> Result<Vec<(FailureCode, u64)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT coalesce(error_code, ?2), count(*) FROM workflow_runs
             WHERE status = ?1 GROUP BY 1 ORDER BY 2 DESC",
        )?;
        let rows = stmt.query_map(params![RunStatus::Failed, FailureCode::Unknown], |row| {
            Ok((row.get(0)?, row.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn record_sweep(
        &self,
        started_at: &Timestamp,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;

    const STORY: &str = "00000000-0000-4000-8000-000000000001";
    const GONE: &str = "00000000-0000-4000-8000-000000000002";

    /// Rows written as the `sqlite3` shell writes them: foreign keys off.
    fn write_unchecked(store: &Store, sql: &str) {
        let conn = Connection::open(store.path()).expect("open");
        conn.execute_batch(&format!("PRAGMA foreign_keys = OFF; {sql}"))
            .expect("write");
    }

    #[test]
    fn every_foreign_key_of_the_schema_is_one_the_orphan_counts_count() {
        let (store, _dir) = temp_store();
        let conn = store.conn().expect("conn");
        assert_eq!(
            uncounted_foreign_keys(&conn).expect("keys"),
            BTreeMap::new(),
            "a new foreign key makes the health check scan its table; \
             count its orphans in `orphan_counts` and list it in ORPHAN_COUNTED_KEYS"
        );
    }

    #[test]
    fn a_broken_key_the_orphan_counts_miss_is_reported_and_an_orphan_is_not_reported_twice() {
        let (store, _dir) = temp_store();
        write_unchecked(
            &store,
            &format!(
                "ALTER TABLE chapters ADD COLUMN checked_by TEXT REFERENCES workflow_runs (id);
                 CREATE TABLE notes (id INTEGER PRIMARY KEY, story_id TEXT REFERENCES stories);
                 INSERT INTO stories (id, title, chapter_count, created_at, updated_at)
                     VALUES ('{STORY}', 'Kept', 3, 't', 't');
                 INSERT INTO chapters (story_id, number, title, content, word_count, created_at, checked_by)
                     VALUES ('{GONE}', 1, 'Lost', '', 0, 't', NULL),
                            ('{STORY}', 1, 'One', '', 0, 't', 'no such run');
                 INSERT INTO notes (id, story_id) VALUES (7, '{GONE}'), (8, '{STORY}');"
            ),
        );
        let conn = store.conn().expect("conn");
        let uncounted = uncounted_foreign_keys(&conn).expect("keys");
        assert_eq!(
            uncounted.keys().map(String::as_str).collect::<Vec<_>>(),
            ["chapters", "notes"]
        );
        assert_eq!(
            store.uncounted_foreign_key_violations().expect("check"),
            ["chapters row 2 -> workflow_runs", "notes row 7 -> stories"]
        );
        assert_eq!(store.orphan_counts().expect("counts").chapters, 1);
    }

    #[test]
    fn wrong_totals_of_one_story_are_those_of_all_for_that_story() {
        let (store, _dir) = temp_store();
        write_unchecked(
            &store,
            &format!(
                "INSERT INTO stories (id, title, chapter_count, created_at, updated_at)
                     VALUES ('{STORY}', 'Kept', 3, 't', 't');
                 INSERT INTO chapters (story_id, number, title, content, word_count, created_at)
                     VALUES ('{STORY}', 1, 'One', '', 0, 't'), ('{STORY}', 2, 'Two', '', 0, 't'),
                            ('{GONE}', 1, 'Lost', '', 0, 't');
                 INSERT INTO workflow_runs (id, story_id, status, chapters_done, chapters_total, created_at, updated_at)
                     VALUES ('10000000-0000-4000-8000-000000000001', '{STORY}', 'completed', 3, 3, 't', 't'),
                            ('10000000-0000-4000-8000-000000000002', '{STORY}', 'cancelled', 1, 3, 't', 't'),
                            ('10000000-0000-4000-8000-000000000003', '{STORY}', 'failed', 3, 3, 't', 't'),
                            ('10000000-0000-4000-8000-000000000004', '{GONE}', 'completed', 0, 3, 't', 't');"
            ),
        );
        let all = store.runs_with_wrong_totals().expect("all");
        let ids: Vec<&str> = all.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "10000000-0000-4000-8000-000000000001",
                "10000000-0000-4000-8000-000000000003"
            ],
            "a cancelled run behind the chapters is history; an orphan is reported as one"
        );
        assert!(all.iter().all(|(_, done, saved)| (*done, *saved) == (3, 2)));
        let story = StoryId::parse(STORY).expect("id");
        assert_eq!(
            store.runs_with_wrong_totals_of(Some(&story)).expect("one"),
            all
        );
    }
}
