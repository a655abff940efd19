//! `serve` (and no command at all): the HTTP server, the sweeper and the
//! workers on one database until Ctrl-C, then an orderly shutdown.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::config::ServeConfig;
use crate::engine::{Engine, EngineSettings};
use crate::error::{Error, Result, exit};
use crate::http::{EdgePolicy, HttpServer};
use crate::maintenance::Sweeper;
use crate::store::Store;

pub(super) fn serve(db: &Path, config: ServeConfig) -> Result<u8> {
    // The flags' generator is checked here, so bad flags stop `serve`; the
    // one in force is built by the settings (flags over saved values).
    config.generator.build()?;
    let app = Arc::new(App::new(Store::open(db, config.connections())?, config));
    let config = &app.config;
    let policy = EdgePolicy::new(config.addr.ip(), config.token.clone());
    let http =
        HttpServer::start(app.clone(), config.addr, policy, config.http.clone()).map_err(|e| {
            Error::validation("--addr", format!("cannot listen on {}: {e}", config.addr))
        })?;
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .map_err(|e| Error::Internal(format!("cannot install the signal handler: {e}")))?;
    let sweeper = Sweeper::start(app.clone(), config.sweep_interval)
        .map_err(|e| Error::Internal(format!("cannot start the sweeper: {e}")))?;
    sweeper.wait_for_first_sweep(Duration::from_secs(30));
    let engine = Engine::start(
        app.clone(),
        app.settings.source(),
        EngineSettings::from_config(config),
    )
    .map_err(|e| Error::Internal(format!("cannot start the workers: {e}")))?;
    log::info!(
        "storyflow {} serving http://{} (database {}, generator {}, {} workers)",
        env!("CARGO_PKG_VERSION"),
        http.addr(),
        db.display(),
        app.settings.source().name(),
        config.workers
    );
    let _ = stop_rx.recv();
    log::info!("shutting down: finishing requests, releasing runs in hand");
    http.shutdown();
    engine.shutdown(config.shutdown_grace);
    sweeper.shutdown();
    log::info!("stopped");
    Ok(exit::OK)
}
