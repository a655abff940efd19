//! `GET|PUT /api/settings` and `POST /api/settings/test`: the writer's
//! settings (meaning and rules in [`crate::settings`]). No answer of these
//! routes ever holds the API key: reads say `llm_api_key_set`.

use serde_json::Value;

use super::{Reply, Req};
use crate::app::App;
use crate::error::Result;

/// 200: the settings in force, which of them a `serve` flag fixes, whether
/// the generator is locked to the command one.
pub fn get_settings(app: &App) -> Result<Reply> {
    Ok(Reply::ok(&app.settings.to_json()?))
}

/// 200 with the settings now in force. Fields absent are unchanged; null
/// (or `""` for the key and the per-kind models) goes back to the default.
/// Unknown fields (`generator_cmd` among them) are 400, bad values 422; a
/// refused change saves nothing.
pub fn put_settings(req: &Req, app: &App) -> Result<Reply> {
    let body: Value = req.json()?;
    Ok(Reply::ok(&app.settings.update(&body)?))
}

/// 200 `{ok, models, latency_ms, error?}`: the server's model list and one
/// tiny completion, with the settings in force or those the body names.
/// A server that cannot be reached is `ok: false` (the test ran), not an
/// HTTP error.
pub fn test_settings(req: &Req, app: &App) -> Result<Reply> {
    let body: Value = req.json_or_default()?;
    let report = app.settings.test(&body)?;
    Ok(Reply::ok(&serde_json::to_value(report).map_err(|e| {
        crate::error::Error::Internal(format!("test report: {e}"))
    })?))
}
