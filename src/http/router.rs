//! One `match` from (method, path segments) to a handler. [`ROUTES`] lists
//! the same table as data, for the OpenAPI document and its sync test.

use super::{Reply, Req, assets, bible, handlers as h, history, import, live, search, settings};
use crate::app::App;
use crate::error::{Error, Result};

/// Every route: method and path pattern (`{id}` for an id segment).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/health"),
    ("GET", "/api/stories"),
    ("POST", "/api/stories"),
    ("POST", "/api/stories/import"),
    ("GET", "/api/stories/{id}"),
    ("PATCH", "/api/stories/{id}"),
    ("DELETE", "/api/stories/{id}"),
    ("POST", "/api/outline/preview"),
    ("GET", "/api/stories/{id}/chapters"),
    ("GET", "/api/stories/{id}/chapters/{number}"),
    ("PATCH", "/api/stories/{id}/chapters/{number}"),
    ("POST", "/api/stories/{id}/chapters/{number}/regenerate"),
    ("GET", "/api/stories/{id}/chapters/{number}/versions"),
    (
        "GET",
        "/api/stories/{id}/chapters/{number}/versions/{version}",
    ),
    (
        "GET",
        "/api/stories/{id}/chapters/{number}/versions/{version}/diff",
    ),
    (
        "POST",
        "/api/stories/{id}/chapters/{number}/versions/{version}/restore",
    ),
    ("POST", "/api/stories/{id}/rollback"),
    ("GET", "/api/trash"),
    ("GET", "/api/backups"),
    ("POST", "/api/trash/{id}/restore"),
    ("GET", "/api/stories/{id}/export"),
    ("GET", "/api/stories/{id}/bible"),
    ("POST", "/api/stories/{id}/bible"),
    ("PATCH", "/api/stories/{id}/bible/{entry}"),
    ("DELETE", "/api/stories/{id}/bible/{entry}"),
    ("GET", "/api/stories/{id}/runs"),
    ("POST", "/api/stories/{id}/runs"),
    ("GET", "/api/runs"),
    ("GET", "/api/search"),
    ("GET", "/api/settings"),
    ("PUT", "/api/settings"),
    ("POST", "/api/settings/test"),
    ("GET", "/api/runs/{id}"),
    ("GET", "/api/runs/{id}/events"),
    ("GET", "/api/runs/{id}/live"),
    ("POST", "/api/runs/{id}/cancel"),
    ("POST", "/api/runs/{id}/retry"),
    ("POST", "/api/runs/{id}/progress"),
    ("GET", "/api/diagnostics/runs/{id}"),
    ("GET", "/api/diagnostics/stories/{id}"),
    ("GET", "/api/diagnostics/orphans"),
    ("GET", "/api/maintenance/health"),
    ("POST", "/api/maintenance/health"),
    ("POST", "/api/maintenance/fix-orphans"),
    ("GET", "/api/metrics"),
    ("GET", "/api/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/"),
];

/// Dispatches on the method among the ones a path allows.
macro_rules! methods {
    ($req:expr, { $($method:literal => $handler:expr),+ $(,)? }) => {
        match $req.method.as_str() {
            $($method => $handler,)+
            _ => Err(not_allowed($req, &[$($method),+])),
        }
    };
}

pub fn route(req: &Req, app: &App) -> Result<Reply> {
    match req.segments().as_slice() {
        [] => methods!(req, { "GET" => Ok(assets::index()) }),
        ["assets", name] => {
            methods!(req, { "GET" => assets::asset(name, req.query_param("v")) })
        }
        ["metrics"] => methods!(req, { "GET" => h::metrics_prometheus(app) }),
        ["api", rest @ ..] => route_api(req, app, rest),
        _ => Err(not_found(req)),
    }
}

/// The API's routes: a table-like `match`, one arm a route; a story's
/// chapters have their own table ([`route_chapters`]).
fn route_api(req: &Req, app: &App, segments: &[&str]) -> Result<Reply> {
    match segments {
        ["health"] => methods!(req, { "GET" => h::health(app) }),
        ["metrics"] => methods!(req, { "GET" => h::metrics_json(app) }),
        ["openapi.json"] => methods!(req, { "GET" => Ok(assets::openapi()) }),
        ["stories"] => methods!(req, {
            "GET" => h::list_stories(req, app),
            "POST" => h::create_story(req, app),
        }),
        // Before `["stories", id]`: `import` is a word, not a story id.
        ["stories", "import"] => methods!(req, { "POST" => import::import_story(req, app) }),
        ["stories", id] => methods!(req, {
            "GET" => h::get_story(app, id),
            "PATCH" => h::update_story(req, app, id),
            "DELETE" => h::delete_story(req, app, id),
        }),
        ["outline", "preview"] => methods!(req, { "POST" => h::preview_outline(req, app) }),
        ["stories", id, "chapters", rest @ ..] => route_chapters(req, app, id, rest),
        ["stories", id, "rollback"] => {
            methods!(req, { "POST" => history::roll_back(req, app, id) })
        }
        ["settings"] => methods!(req, {
            "GET" => settings::get_settings(app),
            "PUT" => settings::put_settings(req, app),
        }),
        ["settings", "test"] => methods!(req, { "POST" => settings::test_settings(req, app) }),
        ["trash"] => methods!(req, { "GET" => history::trash(app) }),
        ["backups"] => methods!(req, { "GET" => history::backups(app) }),
        ["trash", id, "restore"] => {
            methods!(req, { "POST" => history::restore_from_trash(app, id) })
        }
        ["stories", id, "export"] => methods!(req, { "GET" => h::export_story(req, app, id) }),
        ["stories", id, "bible"] => methods!(req, {
            "GET" => bible::list(app, id),
            "POST" => bible::create(req, app, id),
        }),
        ["stories", id, "bible", entry] => methods!(req, {
            "PATCH" => bible::update(req, app, id, entry),
            "DELETE" => bible::delete(app, id, entry),
        }),
        ["stories", id, "runs"] => methods!(req, {
            "GET" => h::list_story_runs(req, app, id),
            "POST" => h::start_run(req, app, id),
        }),
        ["runs"] => methods!(req, { "GET" => h::list_runs(req, app) }),
        ["search"] => methods!(req, { "GET" => search::search(req, app) }),
        ["runs", id] => methods!(req, { "GET" => h::get_run(app, id) }),
        ["runs", id, "events"] => methods!(req, { "GET" => h::run_events(app, id) }),
        ["runs", id, "live"] => methods!(req, { "GET" => live::snapshot(app, id) }),
        ["runs", id, "cancel"] => methods!(req, { "POST" => h::cancel_run(app, id) }),
        ["runs", id, "retry"] => methods!(req, { "POST" => h::retry_run(app, id) }),
        ["runs", id, "progress"] => methods!(req, { "POST" => h::report_progress(req, app, id) }),
        ["diagnostics", "runs", id] => methods!(req, { "GET" => h::diagnose_run(app, id) }),
        ["diagnostics", "stories", id] => methods!(req, { "GET" => h::diagnose_story(app, id) }),
        ["diagnostics", "orphans"] => methods!(req, { "GET" => h::orphans(app) }),
        ["maintenance", "health"] => methods!(req, {
            "GET" => h::health_check(req, app, false),
            "POST" => h::health_check(req, app, true),
        }),
        ["maintenance", "fix-orphans"] => methods!(req, { "POST" => h::fix_orphans(req, app) }),
        _ => Err(not_found(req)),
    }
}

/// `/api/stories/{id}/chapters/…`: a story's chapters, their versions and
/// what a writer does to one.
fn route_chapters(req: &Req, app: &App, id: &str, rest: &[&str]) -> Result<Reply> {
    match rest {
        [] => methods!(req, { "GET" => h::list_chapters(app, id) }),
        [number] => methods!(req, {
            "GET" => h::get_chapter(app, id, number),
            "PATCH" => h::edit_chapter(req, app, id, number),
        }),
        [number, "regenerate"] => {
            methods!(req, { "POST" => h::regenerate_chapter(req, app, id, number) })
        }
        [number, "versions"] => {
            methods!(req, { "GET" => history::chapter_versions(app, id, number) })
        }
        [number, "versions", version] => {
            methods!(req, { "GET" => history::chapter_version(app, id, number, version) })
        }
        [number, "versions", version, "diff"] => {
            methods!(req, { "GET" => history::version_diff(req, app, id, number, version) })
        }
        [number, "versions", version, "restore"] => {
            methods!(req, { "POST" => history::restore_version(app, id, number, version) })
        }
        _ => Err(not_found(req)),
    }
}

fn not_found(req: &Req) -> Error {
    Error::NotFound {
        method: req.method.clone(),
        path: shorten(&req.path),
    }
}

fn not_allowed(req: &Req, allowed: &'static [&'static str]) -> Error {
    Error::MethodNotAllowed {
        method: shorten(&req.method),
        path: shorten(&req.path),
        allowed,
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::ROUTES;

    const OPENAPI: &str = include_str!("../../static/openapi.json");

    fn document() -> Value {
        serde_json::from_str(OPENAPI).expect("static/openapi.json is JSON")
    }

    #[test]
    fn the_openapi_document_describes_every_route_and_no_other() {
        let doc = document();
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if matches!(
                    method.as_str(),
                    "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
                ) {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let routed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(method, path)| (method.to_string(), path.to_string()))
            .collect();
        assert_eq!(routed.len(), ROUTES.len(), "a route is listed twice");
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "routes missing from static/openapi.json: {undocumented:?}; \
             documented but not routed: {unrouted:?}"
        );
    }

    #[test]
    fn every_operation_answers_errors_in_the_shared_shape() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let responses = operation["responses"].as_object().expect("responses");
                assert!(
                    responses.keys().any(|code| code.starts_with('2')),
                    "{method} {path} has no success response"
                );
                assert_eq!(
                    responses["default"]["$ref"], "#/components/responses/Error",
                    "{method} {path}"
                );
                let segments = path.matches('{').count();
                let params = operation["parameters"].as_array().map_or(0, |params| {
                    params
                        .iter()
                        .map(|p| match p["$ref"].as_str() {
                            Some(target) => doc.pointer(&target[1..]).unwrap_or(&Value::Null),
                            None => p,
                        })
                        .filter(|p| p["in"] == "path")
                        .count()
                });
                assert_eq!(segments, params, "{method} {path}: path parameters");
            }
        }
    }

    #[test]
    fn every_reference_in_the_openapi_document_resolves() {
        fn walk(value: &Value, doc: &Value, refs: &mut usize) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        let pointer = target.strip_prefix('#').expect("local reference");
                        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
                        *refs += 1;
                    }
                    map.values().for_each(|v| walk(v, doc, refs));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, doc, refs)),
                _ => {}
            }
        }
        let doc = document();
        let mut refs = 0;
        walk(&doc, &doc, &mut refs);
        assert!(refs > 50, "only {refs} references");
        let error = &doc["components"]["schemas"]["Error"]["properties"]["error"];
        for field in ["code", "message", "status", "details"] {
            assert!(
                error["required"]
                    .as_array()
                    .unwrap()
                    .contains(&Value::from(field))
            );
        }
    }
}
