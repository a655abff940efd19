//! The orphan sweep and the quick health check on a large database (100,000
//! stories, 1,000,000 runs, a few hundred orphans), next to the bare SQL
//! anti-join that counts orphans on the same file.
//!
//! `cargo bench --bench maintenance [-- STORIES RUNS]` — prints one table.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use storyflow::app::{App, AppSettings};
use storyflow::maintenance::{self, HealthOptions};
use storyflow::store::Store;

const ORPHANED_STORIES: usize = 300;

fn generate(path: &Path, stories: usize, runs: usize) {
    drop(Store::open(path, 1).expect("create schema"));
    let mut conn = Connection::open(path).expect("open");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
        .expect("pragmas");
    let tx = conn.transaction().expect("tx");
    let now = "2026-11-29T00:00:00.000Z";
    let story_id = |i: usize| format!("00000000-0000-4000-8000-{i:012}");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO stories (id, title, premise, outline, chapter_count, created_at, updated_at)
                 VALUES (?1, ?2, '', ?3, ?4, ?5, ?5)",
            )
            .expect("prepare");
        for i in 0..stories {
            let (outline, count) = if i % 2 == 0 {
                ("1. One\n2. Two\n3. Three", None)
            } else {
                ("", Some(12))
            };
            insert
                .execute(params![
                    story_id(i),
                    format!("Story {i}"),
                    outline,
                    count,
                    now
                ])
                .expect("story");
        }
        let mut insert = tx
            .prepare(
                "INSERT INTO workflow_runs (id, story_id, status, chapters_done, chapters_total, attempt, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 0, 0, 1, ?4, ?4)",
            )
            .expect("prepare");
        for i in 0..runs {
            let status = if i % 50 == 0 { "failed" } else { "completed" };
            insert
                .execute(params![
                    format!("10000000-0000-4000-8000-{i:012}"),
                    story_id(i % stories),
                    status,
                    now
                ])
                .expect("run");
        }
    }
    tx.commit().expect("commit");
    // Orphans the way they arise: deleted with foreign keys off.
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .expect("fk off");
    for i in 0..ORPHANED_STORIES {
        conn.execute("DELETE FROM stories WHERE id = ?1", [story_id(i * 7 + 1)])
            .expect("orphan");
    }
    // A handful of active orphans for the sweep to mark.
    conn.execute(
        "UPDATE workflow_runs SET status = 'pending' WHERE id IN (SELECT min(id) FROM workflow_runs r
             WHERE NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = r.story_id) GROUP BY story_id LIMIT 20)",
        [],
    )
    .expect("active orphans");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")
        .expect("checkpoint");
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time(repeats: usize, mut work: impl FnMut()) -> Duration {
    median(
        (0..repeats)
            .map(|_| {
                let start = Instant::now();
                work();
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let stories = args.first().copied().unwrap_or(100_000);
    let runs = args.get(1).copied().unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("large.db");
    let started = Instant::now();
    generate(&path, stories, runs);
    println!(
        "generated {stories} stories and {runs} runs in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let bare = {
        let conn = Connection::open(&path).expect("open");
        time(5, || {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM workflow_runs r WHERE NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = r.story_id)",
                    [],
                    |row| row.get(0),
                )
                .expect("anti-join");
            assert!(n > 0);
        })
    };
    let app = Arc::new(App::new(
        Store::open(&path, 4).expect("open"),
        AppSettings::default(),
    ));
    let sweep = time(5, || {
        maintenance::sweep(&app).expect("sweep");
    });
    let health = time(3, || {
        maintenance::health_check(&app, HealthOptions::default()).expect("health");
    });
    let orphans = app.store.orphaned_runs().expect("orphans").len();
    println!("{orphans} orphaned runs; medians of 5 (health-check: 3)");
    println!("{:<40} {:>10} {:>8}", "operation", "ms", "ratio");
    let row = |name: &str, d: Duration| {
        println!(
            "{name:<40} {:>10.1} {:>8.2}",
            d.as_secs_f64() * 1e3,
            d.as_secs_f64() / bare.as_secs_f64()
        );
    };
    row("bare anti-join count (baseline)", bare);
    row("background sweep (all checks)", sweep);
    row("health-check (quick, no --fix)", health);
}
