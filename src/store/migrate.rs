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
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection) -> Result<()> {
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
