//! The writer's settings (`GET|PUT /api/settings`, `POST /api/settings/test`)
//! against a real server and the fake model server: a change applies to the
//! next run without a restart, a flag wins over a saved value, the API key
//! is sent but never shown (GET, log, backup, export), and `/api/health`
//! says when the model server cannot be reached.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::fake_llm::FakeLlm;
use crate::util::{Api, Server, TempDb, cli, create_story, id_of, outline, stdout};

const WAIT: Duration = Duration::from_secs(30);
const KEY: &str = "sk-storyflow-SECRET-7f3a9c";

/// A URL on a loopback port nothing listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/v1")
}

fn put(server: &Server, body: Value) -> Value {
    let resp = server.request("PUT", "/api/settings", Some(&body));
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()
}

/// Writes a two-chapter story and returns its id once the run completed.
fn write_story(server: &Server, title: &str) -> String {
    let story = create_story(server, json!({"title": title, "outline": outline(2)}));
    let id = id_of(&story);
    let run = id_of(&server.start_run(&id, None));
    server.wait_for_run(&run, "completed", WAIT);
    id
}

fn models_seen(llm: &FakeLlm) -> Vec<String> {
    llm.seen()
        .iter()
        .map(|s| s.body["model"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_model_changed_with_put_is_the_model_of_the_next_run_without_a_restart() {
    let llm = FakeLlm::start(Vec::new());
    let server = Server::start(&["--retry-base-ms", "10", "--min-chapter-words", "1"]);
    assert_eq!(server.get("/api/settings").json()["generator"], "builtin");
    let saved = put(
        &server,
        json!({"generator": "openai", "llm_url": llm.url, "llm_model": "first-model"}),
    );
    assert_eq!(saved["generator"], "openai");
    assert_eq!(saved["llm_model"], "first-model");
    write_story(&server, "First");
    let first = models_seen(&llm);
    assert!(!first.is_empty());
    assert!(first.iter().all(|m| m == "first-model"), "{first:?}");

    put(
        &server,
        json!({"llm_model": "second-model", "summary_model": "summary-model"}),
    );
    write_story(&server, "Second");
    let seen = llm.seen();
    let later = &seen[first.len()..];
    assert!(!later.is_empty());
    for request in later {
        let model = request.body["model"].as_str().unwrap_or("");
        if request.is_summary() {
            assert_eq!(model, "summary-model", "{}", request.user_prompt());
        } else {
            assert_eq!(model, "second-model");
        }
    }
    assert!(later.iter().any(|r| r.body["model"] == "second-model"));
}

#[test]
fn the_api_key_is_sent_but_never_in_a_get_a_log_line_a_backup_or_an_export() {
    let llm = FakeLlm::start(Vec::new());
    let db = TempDb::new();
    let server = Server::start_on(&db.path, &llm.args(&[]));
    let saved = put(&server, json!({"llm_api_key": KEY}));
    assert_eq!(saved["llm_api_key_set"], true);
    assert!(!saved.to_string().contains(KEY));
    let id = write_story(&server, "Keyed");
    let bearer = format!("Bearer {KEY}");
    assert!(
        llm.seen()
            .iter()
            .all(|s| s.authorization.as_deref() == Some(bearer.as_str())),
        "every request carries the saved key"
    );
    // The key is in the database (so these greps could find it)...
    let mut database = std::fs::read(&db.path).expect("read db");
    let wal = format!("{}-wal", db.path.display());
    database.extend(std::fs::read(&wal).unwrap_or_default());
    assert!(contains(&database, KEY), "the key is saved in the database");

    // ...and nowhere else.
    for path in [
        "/api/settings".to_string(),
        "/api/health".to_string(),
        "/api/stories".to_string(),
        format!("/api/stories/{id}"),
        format!("/api/stories/{id}/runs"),
        "/api/runs".to_string(),
        "/api/backups".to_string(),
    ] {
        let text = server.get(&path).text();
        assert!(!text.contains(KEY), "{path} shows the key");
    }
    let test = server.post("/api/settings/test", &json!({})).text();
    assert!(!test.contains(KEY));
    // A purge writes a backup first.
    let other = write_story(&server, "To purge");
    assert_eq!(server.delete(&format!("/api/stories/{other}")).status, 204);
    let purge = server.delete(&format!("/api/stories/{other}?purge=true"));
    assert_eq!(purge.status, 200, "{}", purge.text());
    let backups = server.get("/api/backups").json();
    let files: Vec<String> = backups["backups"]
        .as_array()
        .expect("a list of backups")
        .iter()
        .map(|b| b["path"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(!files.is_empty(), "{backups}");
    for file in &files {
        let bytes = std::fs::read(file).expect("read backup");
        assert!(!contains(&bytes, KEY), "backup {file} holds the key");
    }
    let copy = db.path.with_file_name("copy.db");
    let out = cli(&db.path, &["backup", copy.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{out:?}");
    assert!(!contains(&std::fs::read(&copy).expect("read copy"), KEY));
    let export = cli(&db.path, &["story", "export", &id]);
    assert!(export.status.success());
    assert!(!stdout(&export).contains(KEY));
    assert!(!server.log_text().contains(KEY), "the log shows the key");

    // Cleared with "": the next calls carry none.
    let cleared = put(&server, json!({"llm_api_key": ""}));
    assert_eq!(cleared["llm_api_key_set"], false);
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn the_connection_test_lists_the_models_or_says_what_failed() {
    let llm = FakeLlm::start(Vec::new());
    let server = Server::start(&[]);
    let builtin = server.post("/api/settings/test", &json!({})).json();
    assert_eq!(builtin["ok"], true);
    assert_eq!(builtin["models"], json!(["builtin"]));

    let ok = server
        .post(
            "/api/settings/test",
            &json!({"generator": "openai", "llm_url": llm.url, "llm_model": "test-model"}),
        )
        .json();
    assert_eq!(ok["ok"], true, "{ok}");
    assert!(
        ok["models"]
            .as_array()
            .expect("models")
            .contains(&json!("test-model"))
    );
    assert!(ok["latency_ms"].is_u64());
    assert!(ok.get("error").is_none());
    assert_eq!(llm.seen().len(), 1, "one tiny completion");
    assert!(llm.seen()[0].body["max_tokens"].as_u64().unwrap_or(999) <= 16);

    let closed = closed_port_url();
    let failed = server
        .post(
            "/api/settings/test",
            &json!({"generator": "openai", "llm_url": closed}),
        )
        .json();
    assert_eq!(failed["ok"], false, "{failed}");
    let error = failed["error"].as_str().expect("an error");
    assert!(error.contains(&closed), "{error}");
    // Testing saved nothing.
    assert_eq!(server.get("/api/settings").json()["generator"], "builtin");
}

#[test]
fn a_serve_flag_wins_over_the_saved_value_and_says_so() {
    let llm = FakeLlm::start(Vec::new());
    let server = Server::start(&llm.args(&[]));
    let saved = put(
        &server,
        json!({"llm_model": "saved-model", "temperature": 0.4}),
    );
    assert_eq!(saved["llm_model"], "test-model", "--llm-model wins");
    assert_eq!(saved["temperature"], 0.4);
    let fixed = saved["fixed_by_flags"].as_array().expect("a list");
    assert!(fixed.contains(&json!("llm_model")), "{saved}");
    assert!(fixed.contains(&json!("llm_url")));
    assert!(!fixed.contains(&json!("temperature")));
    write_story(&server, "Flagged");
    for request in llm.seen() {
        assert_eq!(request.body["model"], "test-model");
        assert_eq!(request.body["temperature"], 0.4);
    }
}

#[test]
fn fields_that_are_not_settings_are_refused_and_bad_values_name_their_field() {
    let server = Server::start(&[]);
    let cmd = server.request(
        "PUT",
        "/api/settings",
        Some(&json!({"generator_cmd": "/bin/sh -c 'rm -rf ~'"})),
    );
    assert_eq!(cmd.status, 400, "{}", cmd.text());
    assert_eq!(cmd.error_code(), "BAD_REQUEST");
    let unknown = server.request("PUT", "/api/settings", Some(&json!({"modle": "x"})));
    assert_eq!(unknown.status, 400);
    let bad = server.request("PUT", "/api/settings", Some(&json!({"temperature": 7})));
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json()["error"]["details"]["field"], "temperature");
    let command = server.request(
        "PUT",
        "/api/settings",
        Some(&json!({"generator": "command"})),
    );
    assert_eq!(command.status, 422);
    // Nothing of a refused body was saved.
    assert_eq!(
        server.get("/api/settings").json()["temperature"],
        Value::Null
    );
}

#[test]
fn health_is_degraded_with_a_hint_when_the_model_server_cannot_be_reached() {
    let server = Server::start(&[]);
    let healthy = server.get("/api/health").json();
    assert_eq!(healthy["generator"]["ok"], true, "{healthy}");
    let closed = closed_port_url();
    put(&server, json!({"generator": "openai", "llm_url": closed}));
    let health = server.get("/api/health").json();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["generator"]["ok"], false);
    assert!(health["generator"]["checked_at"].is_string());
    let hint = health["hint"].as_str().expect("a hint");
    assert!(hint.contains(&closed), "{hint}");
    assert!(hint.contains("running"), "{hint}");
    put(&server, json!({"generator": "builtin"}));
    let back = server.get("/api/health").json();
    assert_eq!(back["generator"]["ok"], true, "{back}");
    assert_eq!(back["hint"], Value::Null);
}

#[test]
fn runs_failing_on_the_generator_degrade_the_health_until_the_settings_change() {
    let llm = FakeLlm::with_responder(Vec::new(), |_, _| {
        crate::util::fake_llm::status(401, r#"{"error": {"message": "bad key"}}"#)
    });
    let server = Server::start(&llm.args(&[]));
    let story = create_story(&server, json!({"title": "Refused", "outline": outline(2)}));
    let run = id_of(&server.start_run(&id_of(&story), None));
    let failed = server.wait_for_run(&run, "failed", WAIT);
    assert_eq!(failed["error"]["code"], "GENERATOR_AUTH", "{failed}");
    let health = server.get("/api/health").json();
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["generator"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("GENERATOR_AUTH")),
        "{health}"
    );
    let hint = health["hint"].as_str().expect("a hint");
    assert!(
        hint.contains(&llm.url) && hint.contains("Test connection"),
        "{hint}"
    );
    // A new key is a new start: the old failures no longer count.
    put(&server, json!({"llm_api_key": KEY}));
    assert_eq!(server.get("/api/health").json()["hint"], Value::Null);
}
