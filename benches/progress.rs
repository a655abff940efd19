//! Progress updates: SQL statements per update with the chapter-count cache
//! against a mode that bypasses it (TTL 0: every lookup misses), and updates
//! per second, single-threaded and from 8 threads.
//!
//! `cargo bench --bench progress` — prints one table. Not a test: figures on
//! shared machines vary; the statement counts do not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storyflow::metrics::{Metrics, sql_statements};
use storyflow::progress::{ChapterCounts, ProgressTracker};
use storyflow::store::{NewStory, RunId, RunScope, Store};

/// Chapters per run (the largest count a story may have).
const CHAPTERS: u32 = 1_000;
/// Runs per configuration; each gets a report for every chapter.
const RUNS: usize = 24;

struct Setup {
    tracker: Arc<ProgressTracker>,
    runs: Vec<RunId>,
    _dir: tempfile::TempDir,
}

fn setup(ttl: Duration, runs: usize) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("bench.db"), 16).expect("open");
    let metrics = Arc::new(Metrics::default());
    let counts = Arc::new(ChapterCounts::new(
        store.clone(),
        metrics.clone(),
        10,
        ttl,
        10_000,
    ));
    let tracker = Arc::new(ProgressTracker::new(store.clone(), counts, metrics));
    let runs = (0..runs)
        .map(|i| {
            let story = store
                .create_story(&NewStory {
                    title: format!("Story {i}"),
                    outline: "## Chapter 1: A\n## Chapter 2: B".into(),
                    chapter_count: Some(CHAPTERS),
                    ..Default::default()
                })
                .expect("story");
            store
                .create_run(&story.id, CHAPTERS, RunScope::Book)
                .expect("run")
                .id
        })
        .collect();
    Setup {
        tracker,
        runs,
        _dir: dir,
    }
}

/// Returns (statements per update, updates per second).
fn measure(ttl: Duration, threads: usize) -> (f64, f64) {
    let setup = setup(ttl, RUNS);
    // Warm: the first report of a run reads its story id and count.
    for run in &setup.runs {
        setup.tracker.report(run, 1, None).expect("warm-up report");
    }
    let before = sql_statements();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for share in setup.runs.chunks(RUNS.div_ceil(threads)) {
            let tracker = setup.tracker.clone();
            scope.spawn(move || {
                for run in share {
                    for done in 2..=CHAPTERS {
                        tracker.report(run, done, None).expect("report");
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let total = f64::from(CHAPTERS - 1) * RUNS as f64;
    (
        (sql_statements() - before) as f64 / total,
        total / elapsed.as_secs_f64(),
    )
}

fn main() {
    let updates = (CHAPTERS - 1) as usize * RUNS;
    println!(
        "progress updates ({updates} per configuration over {RUNS} runs, WAL, synchronous=NORMAL)"
    );
    println!(
        "{:<34} {:>16} {:>14}",
        "configuration", "SQL stmts/update", "updates/s"
    );
    for (name, ttl, threads) in [
        ("cached count, 1 thread", Duration::from_secs(300), 1),
        ("cache bypassed (TTL 0), 1 thread", Duration::ZERO, 1),
        ("cached count, 8 threads", Duration::from_secs(300), 8),
        ("cache bypassed, 8 threads", Duration::ZERO, 8),
    ] {
        let (statements, rate) = measure(ttl, threads);
        println!("{name:<34} {statements:>16.2} {rate:>14.0}");
    }
}
