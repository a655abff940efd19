//! Schema migrations: the numbered files of `schema/`, compiled in, applied in
//! order in one exclusive transaction, and recorded both in `user_version`
//! (what SQLite reads cheaply) and in `schema_migrations` (what a person reads).
//!
//! Append only: a released migration is never edited or removed.

use rusqlite::{Connection, TransactionBehavior, params};

use crate::clock::{Clock, SystemClock, timestamp};
use crate::error::{Error, Result};

const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../schema/0001_init.sql")),
    (
        "0002_chapter_control",
        include_str!("../../schema/0002_chapter_control.sql"),
    ),
    (
        "0003_run_status_check",
        include_str!("../../schema/0003_run_status_check.sql"),
    ),
    (
        "0004_chapter_versions",
        include_str!("../../schema/0004_chapter_versions.sql"),
    ),
    (
        "0005_story_fields",
        include_str!("../../schema/0005_story_fields.sql"),
    ),
    (
        "0006_generations",
        include_str!("../../schema/0006_generations.sql"),
    ),
    ("0007_search", include_str!("../../schema/0007_search.sql")),
    ("0008_bible", include_str!("../../schema/0008_bible.sql")),
    (
        "0009_settings",
        include_str!("../../schema/0009_settings.sql"),
    ),
    (
        "0010_version_quality",
        include_str!("../../schema/0010_version_quality.sql"),
    ),
    (
        "0011_time_to_first_token",
        include_str!("../../schema/0011_time_to_first_token.sql"),
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`]. Foreign keys are off while
/// migrations run (SQLite ignores the switch inside a transaction, so it is
/// flipped around it): a migration that rebuilds a table drops the old one,
/// which with foreign keys on would delete the rows that point at it.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let foreign_keys: bool = conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0))?;
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let migrated = apply_pending(conn);
    if foreign_keys {
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
    }
    migrated
}

fn apply_pending(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(Error::DatabaseUnusable {
            path: String::new(),
            reason: format!(
                "it was written by a newer storyflow (schema version {current}, this build knows up to {SCHEMA_VERSION}); upgrade storyflow or use another file"
            ),
        });
    }
    if current < SCHEMA_VERSION && current == 0 && has_foreign_tables(&tx)? {
        return Err(Error::DatabaseUnusable {
            path: String::new(),
            reason: "it holds tables that are not storyflow's; use a new file".into(),
        });
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY NOT NULL,
             name TEXT NOT NULL,
             applied_at TEXT NOT NULL
         ) STRICT;",
    )?;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, timestamp(SystemClock.now())],
        )?;
        // PRAGMA takes no bound parameters; `version` is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))?;
        log::info!("applied schema migration {name}");
    }
    tx.commit()?;
    Ok(())
}

fn has_foreign_tables(conn: &Connection) -> Result<bool> {
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        [],
        |row| row.get(0),
    )?;
    Ok(count > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn migrating_twice_is_a_no_op_and_recorded_once() {
        let (store, _dir) = crate::store::testing::temp_store();
        let mut conn = store.conn().unwrap();
        migrate(&mut conn).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, SCHEMA_VERSION);
    }

    /// A version 2 file with runs in every status, their events and a
    /// chapter, as a release before the status rule was rewritten left it.
    fn version_two_database(path: &std::path::Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        for (_, sql) in &MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 2;
             INSERT INTO stories (id, title, created_at, updated_at)
                 VALUES ('s1', 'Tide', 't', 't'), ('s2', 'Ebb', 't', 't');
             INSERT INTO workflow_runs (id, story_id, status, chapters_done, chapters_total,
                                        created_at, updated_at, until_chapter)
                 VALUES ('r1', 's1', 'completed', 3, 3, 't1', 't', NULL),
                        ('r2', 's1', 'failed', 1, 3, 't2', 't', NULL),
                        ('r3', 's1', 'running', 2, 3, 't3', 't', 2),
                        ('r4', 's2', 'cancelled', 0, 3, 't4', 't', NULL),
                        ('r5', 's2', 'pending', 0, 3, 't5', 't', NULL);
             INSERT INTO run_events (run_id, at, kind, message)
                 VALUES ('r1', 't', 'completed', 'done'), ('r3', 't', 'chapter', 'two');
             INSERT INTO chapters (story_id, number, title, content, word_count, created_at)
                 VALUES ('s1', 1, 'One', 'Fog.', 1, 't');",
        )
        .unwrap();
    }

    #[test]
    fn the_status_rule_rewrite_keeps_every_row_event_and_rule() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        version_two_database(&path);
        let store = Store::open(&path, 1).unwrap();
        let conn = store.conn().unwrap();
        let runs: Vec<(String, String, i64, Option<i64>)> = conn
            .prepare(
                "SELECT id, status, chapters_done, until_chapter FROM workflow_runs ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            runs,
            vec![
                ("r1".into(), "completed".into(), 3, None),
                ("r2".into(), "failed".into(), 1, None),
                ("r3".into(), "running".into(), 2, Some(2)),
                ("r4".into(), "cancelled".into(), 0, None),
                ("r5".into(), "pending".into(), 0, None),
            ]
        );
        // Dropping the old table did not cascade to the events.
        let events: i64 = conn
            .query_row("SELECT count(*) FROM run_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(events, 2);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // Stories written before the story fields read back with the defaults.
        let fields: (String, String, i64) = conn
            .query_row(
                "SELECT language, pov, target_words FROM stories WHERE id = 's1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(fields, ("English".into(), String::new(), 1500));
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        drop(conn);
        store
            .write_one(|conn| {
                // The rules still hold: a status outside the five is refused,
                // one active run per story, and foreign keys are back on.
                let bogus = conn.execute("UPDATE workflow_runs SET status = 'bogus' WHERE id = 'r1'", []);
                assert!(bogus.is_err(), "{bogus:?}");
                let second_active = conn.execute("UPDATE workflow_runs SET status = 'pending' WHERE id = 'r1'", []);
                assert!(second_active.is_err(), "{second_active:?}");
                let orphan = conn.execute(
                    "INSERT INTO workflow_runs (id, story_id, created_at, updated_at) VALUES ('r9', 'nope', 't', 't')",
                    [],
                );
                assert!(orphan.is_err(), "{orphan:?}");
                conn.execute("DELETE FROM stories WHERE id = 's2'", [])?;
                let left: i64 = conn.query_row(
                    "SELECT count(*) FROM workflow_runs WHERE story_id = 's2'",
                    [],
                    |r| r.get(0),
                )?;
                assert_eq!(left, 0, "deleting a story still cascades to its runs");
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_newer_schema_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(conn);
        let err = Store::open(&path, 1).unwrap_err();
        assert!(err.to_string().contains("newer storyflow"), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit::DATABASE);
    }
}
