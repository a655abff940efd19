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

/// `GET /api/health`.
///
/// Polled by the status page, so it reads only what indexes answer at once:
/// live counts of active and stuck runs, and the rest from the last sweep
/// (the finished-run totals are as of that sweep).
pub fn health_summary(app: &App) -> Result<Value> {
    let last = app.store.last_sweep()?;
    let stuck = app.store.stuck_runs(&maintenance::idle_since(app))?.len();
    let disk_full_since = app.store.disk_full_since();
    let degraded = stuck > 0
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
        "generator": app.config.generator.name(),
        "workers": app.config.workers,
        "runs": runs,
        "last_sweep": last,
    }))
}
