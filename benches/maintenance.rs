//! The orphan sweep and the quick health check on a large database (100,000
//! stories, 1,000,000 runs, a few hundred orphans), next to the bare SQL
//! anti-join that counts orphans on the same file, and the quick integrity
//! check alone (which the health check runs beside its indexed checks, so it
//! bounds the health check from below).
//!
//! `cargo bench --bench maintenance [-- STORIES RUNS]` — prints one table.

use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "data/mod.rs"]
mod data;

use rusqlite::Connection;
use storyflow::app::{App, AppSettings};
use storyflow::maintenance::{self, HealthOptions};
use storyflow::store::Store;

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
    data::generate(
        &path,
        data::Shape {
            stories,
            runs,
            orphaned_stories: 300,
            active: false,
        },
    )
    .expect("generate the database");
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
    // The first sweep also runs the quick integrity check (hourly after that).
    let first_sweep = time(1, || {
        maintenance::sweep(&app, &mut maintenance::IntegrityMemo::default()).expect("sweep");
    });
    let mut memo = maintenance::IntegrityMemo::default();
    maintenance::sweep(&app, &mut memo).expect("sweep");
    let sweep = time(5, || {
        maintenance::sweep(&app, &mut memo).expect("sweep");
    });
    let orphan_count = time(5, || {
        app.store.orphan_counts().expect("orphan counts");
    });
    let quick_check = time(5, || {
        let problems = app.store.integrity_problems(false).expect("quick_check");
        assert!(problems.is_empty(), "{problems:?}");
    });
    let health = time(5, || {
        maintenance::health_check(&app, HealthOptions::default()).expect("health");
    });
    let orphans = app.store.orphaned_runs().expect("orphans").len();
    println!("{orphans} orphaned runs; medians of 5 (first sweep: 1)");
    println!("{:<40} {:>10} {:>8}", "operation", "ms", "ratio");
    let row = |name: &str, d: Duration| {
        println!(
            "{name:<40} {:>10.1} {:>8.2}",
            d.as_secs_f64() * 1e3,
            d.as_secs_f64() / bare.as_secs_f64()
        );
    };
    row("bare anti-join count (baseline)", bare);
    row("orphan counts (runs, chapters, events)", orphan_count);
    row("background sweep (timer, no quick_check)", sweep);
    row("PRAGMA quick_check alone", quick_check);
    row("first sweep (with quick_check)", first_sweep);
    row("health-check (quick, no --fix)", health);
    println!(
        "health-check / quick_check alone: {:.2}",
        health.as_secs_f64() / quick_check.as_secs_f64()
    );
}
