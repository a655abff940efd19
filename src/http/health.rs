//! The body of `GET /api/health`: what the status page polls.

use serde_json::{Value, json};

use crate::app::App;
use crate::error::Result;
use crate::maintenance;
use crate::run::RunStatus;

/// Problems the last sweep left, for `/api/health`.
fn sweep_problems(findings: &Value) -> bool {
    ["orphaned_runs", "orphaned_chapters", "orphaned_events"]
        .iter()
        .any(|k| findings[k].as_u64().unwrap_or(0) > 0)
        || findings["integrity_ok"] == json!(false)
}

/// How far back a run failing on the generator degrades the health.
const GENERATOR_FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whether the generator answers, as `/api/health` shows it: the last
/// reachability check, and runs that failed on the generator since the
/// settings last changed (within [`GENERATOR_FAILURE_WINDOW`]); with a hint
/// a writer can act on when either is wrong. Returns (object, degraded, hint).
fn generator_health(app: &App) -> Result<(Value, bool, Option<String>)> {
    let reach = app.settings.reachability();
    let now = app.store.clock().now();
    let window_start =
        crate::run::Timestamp::at(now.checked_sub(GENERATOR_FAILURE_WINDOW).unwrap_or(now));
    let since = app
        .settings
        .changed_at()
        .map_or(window_start.clone(), |changed| changed.max(window_start));
    let failure = app.store.recent_generator_failure(since.as_str())?;
    let server = app.settings.shown_url();
    let hint = match (&server, reach.ok, failure.is_some()) {
        (Some(server), false, _) => Some(format!(
            "storyflow cannot reach the model server at {server}: is Ollama (or your model server) running? Start it, or fix the URL in Settings and press Test connection"
        )),
        (Some(server), true, true) => Some(format!(
            "runs are failing on the model server at {server}: open Settings, press Test connection, then retry the failed runs"
        )),
        (None, _, true) => Some(
            "runs are failing on the generator: check the command given to serve with --generator-cmd (or the settings), then retry the failed runs".to_string(),
        ),
        _ => None,
    };
    let mut generator = json!({
        "name": app.settings.source().name(),
        "ok": reach.ok,
        "checked_at": reach.checked_at,
    });
    if let Some(error) = reach.error.or(failure) {
        generator["error"] = json!(error);
    }
    Ok((generator, hint.is_some(), hint))
}

/// `GET /api/health`.
///
/// Polled by the status page, so it reads only what indexes answer at once:
/// live counts of active and stuck runs, and the rest from the last sweep
/// (the finished-run totals are as of that sweep).
pub fn health_summary(app: &App) -> Result<Value> {
    let last = app.store.last_sweep()?;
    let stuck = app.store.stuck_runs(&maintenance::idle_since(app))?.len();
    let disk_full_since = app.store.disk_full_since();
    let (generator, generator_degraded, hint) = generator_health(app)?;
    let degraded = generator_degraded
        || stuck > 0
        || disk_full_since.is_some()
        || last.as_ref().is_some_and(|s| sweep_problems(&s.findings));
    let mut runs = match last.as_ref().map(|s| &s.findings["runs_by_status"]) {
        Some(Value::Object(counts)) => counts.clone(),
        _ => serde_json::Map::new(),
    };
    let (pending, running) = app.store.active_run_counts()?;
    runs.insert(RunStatus::Pending.as_str().into(), json!(pending));
    runs.insert(RunStatus::Running.as_str().into(), json!(running));
    Ok(json!({
        "status": if degraded { "degraded" } else { "ok" },
        "stuck_runs": stuck,
        "orphaned_runs": last.as_ref().map_or(json!(null), |s| s.findings["orphaned_runs"].clone()),
        "disk_full_since": disk_full_since,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": app.started.elapsed().as_secs(),
        "database": {
            "path": app.store.path().display().to_string(),
            "size_bytes": app.store.size_bytes()?,
            "schema_version": crate::store::SCHEMA_VERSION,
            "sqlite_version": rusqlite::version(),
        },
        "generator": generator,
        "hint": hint,
        "workers": app.config.workers,
        "runs": runs,
        "last_sweep": last,
    }))
}
