use std::sync::atomic::Ordering::Relaxed;
use std::time::UNIX_EPOCH;

use super::*;
use crate::clock::ManualClock;
use crate::run::{FailureCode, Timestamp, WorkerId};
use crate::store::testing::temp_store;
use crate::store::{NewStory, RunOutcome, RunScope, RunStatus, StoryPatch};

struct Fixture {
    store: Store,
    clock: Arc<ManualClock>,
    metrics: Arc<Metrics>,
    counts: Arc<ChapterCounts>,
    tracker: Arc<ProgressTracker>,
    _dir: tempfile::TempDir,
}

fn fixture(capacity: usize) -> Fixture {
    let (store, dir) = temp_store();
    let clock = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    let store = store.with_clock(clock.clone());
    let metrics = Arc::new(Metrics::default());
    let counts = Arc::new(ChapterCounts::new(
        store.clone(),
        metrics.clone(),
        10,
        DEFAULT_TTL,
        capacity,
    ));
    let tracker = Arc::new(ProgressTracker::new(
        store.clone(),
        counts.clone(),
        metrics.clone(),
    ));
    Fixture {
        store,
        clock,
        metrics,
        counts,
        tracker,
        _dir: dir,
    }
}

fn story(store: &Store, outline: &str, count: Option<u32>) -> Story {
    store
        .create_story(&NewStory {
            title: "T".into(),
            outline: outline.into(),
            chapter_count: count,
            ..Default::default()
        })
        .unwrap()
}

#[test]
fn count_sources_in_contract_order() {
    let f = fixture(16);
    let explicit = story(&f.store, "1. a\n2. b", Some(7));
    let outlined = story(&f.store, "1. a\n2. b", None);
    let bare = story(&f.store, "", None);
    assert_eq!(
        f.counts.get(&explicit.id).unwrap(),
        ChapterCount {
            count: 7,
            source: CountSource::Explicit
        }
    );
    assert_eq!(
        f.counts.get(&outlined.id).unwrap(),
        ChapterCount {
            count: 2,
            source: CountSource::Outline
        }
    );
    assert_eq!(
        f.counts.get(&bare.id).unwrap(),
        ChapterCount {
            count: 10,
            source: CountSource::Default
        }
    );
}

/// Issue 12: outlines in the forms writers use gave "10 chapters (default)".
#[test]
fn writer_outlines_give_their_own_chapter_count() {
    let f = fixture(16);
    for (outline, chapters) in [
        (
            "Chapter One: Arrival\nChapter Two: Storm\nChapter Three: Home",
            3,
        ),
        ("- Ch. 1: Arrival\n- Ch. 2: Storm", 2),
        (
            "# Part One\n## 1. Arrival\n## 2. Storm\n# Part Two\n## 1. Home",
            3,
        ),
        ("Prologue\nChapter 1: Arrival\nEpilogue", 3),
    ] {
        let s = story(&f.store, outline, None);
        assert_eq!(
            f.counts.get(&s.id).unwrap(),
            ChapterCount {
                count: chapters,
                source: CountSource::Outline
            },
            "{outline}"
        );
    }
}

#[test]
fn cached_counts_cost_no_reads_until_they_expire_or_change() {
    let f = fixture(16);
    let s = story(&f.store, "1. a\n2. b", None);
    f.counts.get(&s.id).unwrap();
    for _ in 0..100 {
        assert_eq!(f.counts.get(&s.id).unwrap().count, 2);
    }
    assert_eq!(f.metrics.cache_hits.load(Relaxed), 100);
    assert_eq!(f.metrics.cache_misses.load(Relaxed), 1);

    f.store
        .update_story(
            &s.id,
            &StoryPatch {
                outline: Some("1. a".into()),
                ..Default::default()
            },
        )
        .unwrap();
    f.counts.invalidate(&s.id);
    assert_eq!(f.counts.get(&s.id).unwrap().count, 1);

    f.clock.advance(DEFAULT_TTL + Duration::from_secs(1));
    assert_eq!(f.counts.sweep_expired(), 1);
    assert!(f.counts.is_empty());
    assert_eq!(f.metrics.cache_expired.load(Relaxed), 1);
}

#[test]
fn the_cache_is_bounded_by_its_capacity() {
    let f = fixture(3);
    for _ in 0..10 {
        let s = story(&f.store, "", Some(2));
        f.counts.get(&s.id).unwrap();
    }
    assert_eq!(f.counts.len(), 3);
    assert_eq!(f.metrics.cache_evictions.load(Relaxed), 7);
}

#[test]
fn progress_is_monotonic_and_completes_at_the_total() {
    let f = fixture(16);
    let s = story(&f.store, "", Some(4));
    let run = f.store.create_run(&s.id, 4, RunScope::Book).unwrap();
    assert_eq!(
        f.tracker.report(&run.id, 2, Some("chapter 2/4")).unwrap(),
        ProgressOutcome::Applied
    );
    assert_eq!(f.store.run(&run.id).unwrap().status, RunStatus::Running);
    assert_eq!(
        f.tracker.report(&run.id, 1, None).unwrap(),
        ProgressOutcome::Skipped(SkipReason::Stale)
    );
    assert_eq!(f.store.run(&run.id).unwrap().chapters_done, 2);
    assert!(matches!(
        f.tracker.report(&run.id, 5, None),
        Err(Error::Validation { .. })
    ));
    assert_eq!(
        f.tracker.report(&run.id, 4, None).unwrap(),
        ProgressOutcome::Applied
    );
    let done = f.store.run(&run.id).unwrap();
    assert_eq!((done.status, done.progress()), (RunStatus::Completed, 100));
    assert_eq!(
        f.tracker.report(&run.id, 4, None).unwrap(),
        ProgressOutcome::Skipped(SkipReason::RunFinished)
    );
}

#[test]
fn failed_runs_are_never_advanced_and_the_skip_is_counted() {
    let f = fixture(16);
    let s = story(&f.store, "", Some(4));
    let run = f.store.create_run(&s.id, 4, RunScope::Book).unwrap();
    let worker = WorkerId::new(0, "test");
    let far_future = Timestamp::at(f.store.clock().now() + Duration::from_secs(3600));
    f.store
        .claim_next_run(&worker, &far_future, 5)
        .unwrap()
        .expect("the run is claimed");
    let failed = RunOutcome::Failed {
        code: FailureCode::GeneratorRejected,
        message: "failed on purpose",
    };
    assert!(f.store.finish_run(&run.id, &worker, failed).unwrap());
    assert_eq!(
        f.tracker.report(&run.id, 3, None).unwrap(),
        ProgressOutcome::Skipped(SkipReason::RunFailed)
    );
    assert_eq!(f.store.run(&run.id).unwrap().chapters_done, 0);
    assert_eq!(f.metrics.progress_skipped_run_failed.load(Relaxed), 1);
}

#[test]
fn concurrent_reports_in_random_order_end_at_the_highest() {
    let f = fixture(16);
    let s = story(&f.store, "", Some(200));
    let run = f.store.create_run(&s.id, 200, RunScope::Book).unwrap();
    let mut values: Vec<u32> = (1..=199).collect();
    fastrand::shuffle(&mut values);
    let chunks: Vec<Vec<u32>> = values.chunks(25).map(<[u32]>::to_vec).collect();
    std::thread::scope(|scope| {
        for chunk in chunks {
            let tracker = f.tracker.clone();
            let run = run.id.clone();
            scope.spawn(move || {
                for value in chunk {
                    tracker.report(&run, value, None).unwrap();
                }
            });
        }
    });
    let after = f.store.run(&run.id).unwrap();
    assert_eq!(after.chapters_done, 199);
    assert_eq!(after.status, RunStatus::Running);
    let applied = f.metrics.progress_applied.load(Relaxed);
    let stale = f.metrics.progress_skipped_stale.load(Relaxed);
    assert_eq!(applied + stale, 199);
}
