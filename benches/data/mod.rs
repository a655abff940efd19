//! Generated databases for the benchmarks: written straight through rusqlite
//! in one transaction (the API would take minutes for a million runs), on a
//! schema created by storyflow itself.

use std::path::Path;

use rusqlite::{Connection, params};
use storyflow::store::Store;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub stories: usize,
    pub runs: usize,
    /// Stories deleted afterwards with foreign keys off, leaving their runs
    /// orphaned the way the `sqlite3` shell does.
    pub orphaned_stories: usize,
    /// One `pending` run of 1,000 chapters per story (for progress load),
    /// instead of finished runs spread over the stories.
    pub active: bool,
}

pub fn story_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

pub fn run_id(i: usize) -> String {
    format!("10000000-0000-4000-8000-{i:012}")
}

pub fn generate(path: &Path, shape: Shape) -> rusqlite::Result<()> {
    drop(Store::open(path, 1).map_err(|e| rusqlite::Error::InvalidPath(format!("{e}").into()))?);
    let mut conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")?;
    let tx = conn.transaction()?;
    let now = "2026-11-29T00:00:00.000Z";
    {
        let mut insert = tx.prepare(
            "INSERT INTO stories (id, title, premise, outline, chapter_count, created_at, updated_at)
             VALUES (?1, ?2, '', ?3, ?4, ?5, ?5)",
        )?;
        for i in 0..shape.stories {
            let (outline, count) = match (shape.active, i % 2) {
                (true, _) => ("", Some(1000)),
                (false, 0) => ("1. One\n2. Two\n3. Three", None),
                (false, _) => ("", Some(12)),
            };
            insert.execute(params![
                story_id(i),
                format!("Story {i}"),
                outline,
                count,
                now
            ])?;
        }
        let mut insert = tx.prepare(
            "INSERT INTO workflow_runs (id, story_id, status, chapters_done, chapters_total, attempt, created_at, updated_at)
             VALUES (?1, ?2, ?3, 0, ?4, 1, ?5, ?5)",
        )?;
        for i in 0..shape.runs {
            let (status, total) = match (shape.active, i % 50) {
                (true, _) => ("pending", 1000),
                (false, 0) => ("failed", 0),
                (false, _) => ("completed", 0),
            };
            insert.execute(params![
                run_id(i),
                story_id(i % shape.stories),
                status,
                total,
                now
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    for i in 0..shape.orphaned_stories {
        conn.execute("DELETE FROM stories WHERE id = ?1", [story_id(i * 7 + 1)])?;
    }
    if shape.orphaned_stories > 0 && !shape.active {
        // A handful of active orphans for the sweep to mark.
        conn.execute(
            "UPDATE workflow_runs SET status = 'pending' WHERE id IN (SELECT min(id) FROM workflow_runs r
                 WHERE NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = r.story_id) GROUP BY story_id LIMIT 20)",
            [],
        )?;
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")?;
    Ok(())
}
