//! Leases, retries, waits, cancel and shutdown.

use std::sync::Arc;
use std::time::Duration;

use super::{Harness, outline, settings};
use crate::clock::{Clock, timestamp};
use crate::engine::worker::backoff;
use crate::generator::GenError;
use crate::run::{EventKind, FailureCode, WorkerId};
use crate::store::RunStatus;

fn rate_limited(seconds: u64) -> GenError {
    GenError::Transient {
        message: "http 429".into(),
        retry_after: Some(Duration::from_secs(seconds)),
    }
}

#[test]
fn an_expired_lease_is_taken_over_and_the_watcher_stops_the_old_worker() {
    let h = Arc::new(Harness::new());
    let (story, run) = h.story_with_run("Salt Road", &outline(2), 2);
    let (a, b) = (h.worker("worker-a"), h.worker("worker-b"));
    let inner = h.clone();
    // Worker A stalls inside its first call past its lease; B takes over.
    h.generator.then(move |task| {
        inner.clock.advance(Duration::from_secs(31));
        assert!(inner.worker("worker-b").run_once().is_some());
        assert_eq!(inner.shared.watch_once(), 1, "A's run is B's now");
        assert!(task.cancel.is_cancelled());
        Err(GenError::Cancelled)
    });
    assert_eq!(a.run_once(), Some(run.clone()));
    drop(b);
    let done = h.run(&run);
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(h.app().store.chapters(&story.id).unwrap().len(), 2);
    assert!(h.has_event(&run, EventKind::Recovered, "taken over from worker-a"));
    assert!(h.has_event(
        &run,
        EventKind::Stopped,
        "worker-a stopped: the run is completed"
    ));
    // A sent nothing after B's calls: its one call came first.
    let calls = h.generator.calls();
    assert_eq!(
        calls.len(),
        1 + 2 * 2,
        "A's call, then B's chapters and summaries"
    );
}

#[test]
fn failed_calls_back_off_exponentially_with_equal_jitter() {
    let h = Harness::new();
    let (_, run) = h.story_with_run("Salt Road", &outline(1), 1);
    for _ in 0..4 {
        h.generator
            .then_error(GenError::transient("connection refused"));
    }
    h.worker("w").run_once();
    assert_eq!(h.run(&run).status, RunStatus::Completed);
    let sleeps = h.clock.sleeps();
    assert_eq!(sleeps.len(), 4, "{sleeps:?}");
    for (n, slept) in sleeps.iter().enumerate() {
        let cap = Duration::from_millis(500) * (1 << n);
        assert!(
            *slept >= cap / 2 && *slept <= cap,
            "retry {}: {slept:?}",
            n + 1
        );
    }
    // The cap holds however many failures, and jitter stays in its half.
    for failures in 1..40 {
        let delay = backoff(
            Duration::from_millis(500),
            Duration::from_secs(120),
            failures,
        );
        assert!(delay <= Duration::from_secs(120), "{failures}: {delay:?}");
        let cap = (Duration::from_millis(500).saturating_mul(1 << (failures - 1).min(16)))
            .min(Duration::from_secs(120));
        assert!(delay >= cap / 2, "{failures}: {delay:?}");
    }
}

#[test]
fn transient_failures_past_the_retries_fail_the_run_unavailable() {
    let h = Harness::new();
    let (_, run) = h.story_with_run("Salt Road", &outline(1), 1);
    for _ in 0..5 {
        h.generator
            .then_error(GenError::transient("connection refused"));
    }
    h.worker("w").run_once();
    let failed = h.run(&run);
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.error_code, Some(FailureCode::GeneratorUnavailable));
    assert_eq!(h.clock.sleeps().len(), 4);
}

#[test]
fn a_servers_retry_after_is_the_wait() {
    let h = Harness::new();
    let (_, run) = h.story_with_run("Salt Road", &outline(1), 1);
    h.generator.then_error(rate_limited(40));
    h.worker("w").run_once();
    assert_eq!(h.run(&run).status, RunStatus::Completed);
    assert_eq!(h.clock.sleeps(), vec![Duration::from_secs(40)]);
    assert!(h.has_event(&run, EventKind::Retry, "retrying in 40000 ms"));
}

#[test]
fn a_cancel_during_a_retry_after_wait_ends_it_and_sends_nothing_more() {
    let h = Arc::new(Harness::new());
    let (_, run) = h.story_with_run("Salt Road", &outline(2), 2);
    let (_, next) = h.story_with_run("Second Story", &outline(1), 1);
    h.generator.then_error(rate_limited(40));
    let inner = h.clone();
    let cancelled = run.clone();
    h.clock.on_sleep(move |_| {
        if inner.app().store.run(&cancelled).unwrap().status == RunStatus::Running {
            inner.app().store.cancel_run(&cancelled).unwrap();
            assert_eq!(inner.shared.watch_once(), 1);
        }
    });
    let worker = h.worker("w");
    assert_eq!(worker.run_once(), Some(run.clone()));
    assert_eq!(h.run(&run).status, RunStatus::Cancelled);
    assert_eq!(h.generator.calls().len(), 1, "no request after the cancel");
    assert!(h.has_event(&run, EventKind::Stopped, "the run was cancelled"));
    // The worker is free at once for the next story.
    assert_eq!(worker.run_once(), Some(next.clone()));
    assert_eq!(h.run(&next).status, RunStatus::Completed);
    assert!(
        h.generator.calls()[1..]
            .iter()
            .all(|c| c.title == "Second Story")
    );
}

#[test]
fn a_cancel_the_watcher_has_not_seen_yet_still_stops_the_next_request() {
    let h = Arc::new(Harness::new());
    let (_, run) = h.story_with_run("Salt Road", &outline(2), 2);
    h.generator.then_error(rate_limited(5));
    let inner = h.clone();
    let cancelled = run.clone();
    h.clock.on_sleep(move |_| {
        inner.app().store.cancel_run(&cancelled).unwrap();
    });
    h.worker("w").run_once();
    assert_eq!(h.run(&run).status, RunStatus::Cancelled);
    assert_eq!(h.generator.calls().len(), 1);
}

#[test]
fn a_run_recovered_past_its_attempts_fails_stuck_timeout() {
    let h = Harness::new();
    let (_, run) = h.story_with_run("Salt Road", &outline(1), 1);
    let store = &h.app().store;
    for dead in ["dead-1", "dead-2", "dead-3"] {
        let until = timestamp(h.clock.now() + Duration::from_secs(30));
        assert!(
            store
                .claim_next_run(&WorkerId::named(dead), &until, 3)
                .unwrap()
                .is_some()
        );
        h.clock.advance(Duration::from_secs(31));
    }
    assert_eq!(h.worker("w").run_once(), None);
    let failed = h.run(&run);
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.error_code, Some(FailureCode::StuckTimeout));
    assert!(h.generator.calls().is_empty());
}

#[test]
fn shutdown_mid_call_releases_the_run_for_later() {
    let h = Arc::new(Harness::new());
    let (story, run) = h.story_with_run("Salt Road", &outline(2), 2);
    let inner = h.clone();
    h.generator.then(move |task| {
        inner.shared.begin_shutdown();
        assert!(
            task.cancel.is_cancelled(),
            "shutdown cancels every held run"
        );
        Err(GenError::Cancelled)
    });
    h.worker("w").run_once();
    let released = h.run(&run);
    assert_eq!(released.status, RunStatus::Pending);
    assert_eq!(released.lease_owner, None);
    assert_eq!(released.attempt, 0);
    assert!(h.has_event(&run, EventKind::Released, "released by w at shutdown"));
    assert!(h.app().store.chapters(&story.id).unwrap().is_empty());
    assert_eq!(h.generator.calls().len(), 1);
}

#[test]
fn shutdown_during_a_backoff_wait_releases_the_run() {
    let h = Arc::new(Harness::new());
    let (_, run) = h.story_with_run("Salt Road", &outline(1), 1);
    h.generator.then_error(rate_limited(60));
    let inner = h.clone();
    h.clock.on_sleep(move |_| inner.shared.begin_shutdown());
    h.worker("w").run_once();
    assert_eq!(h.run(&run).status, RunStatus::Pending);
    assert_eq!(h.generator.calls().len(), 1);
}

#[test]
fn the_idle_poll_sleeps_on_the_doorbell_and_wakes_on_shutdown() {
    let h = Harness::with(Default::default(), settings());
    let bell = h.app().work_queued.token();
    h.shared.begin_shutdown();
    assert!(bell.is_cancelled(), "shutdown rings the doorbell");
    // Returns at once: the loop sees shutdown before sleeping.
    h.worker("w").work();
    assert!(h.clock.sleeps().is_empty());
}

#[test]
fn a_ring_wakes_a_sleeper_that_took_the_token_before_it() {
    let h = Harness::new();
    let bell = h.app().work_queued.token();
    let (_, _) = h.story_with_run("Salt Road", &outline(1), 1);
    assert!(
        h.clock.sleep(Duration::from_millis(500), &bell),
        "the run queued rang it"
    );
    assert!(
        !h.app().work_queued.token().is_cancelled(),
        "a fresh token is up"
    );
}
