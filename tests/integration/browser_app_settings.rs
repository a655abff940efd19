//! The Settings view (`#preferences`) in headless Chromium: reached from
//! the nav, "Test connection" shows the models and the latency against the
//! fake model server and the reason against a closed port, a field a serve
//! flag fixed is disabled and says so, and Save changes what the server
//! keeps. Same browser helpers and rules as [`crate::browser`].

use serde_json::json;

use crate::browser::{Browser, assert_quiet_console};
use crate::util::fake_llm::FakeLlm;
use crate::util::{Api, Server};

/// Puts `text` into a form field as typing would.
fn type_into(browser: &Browser, css: &str, text: &str) {
    browser.wait_visible(css);
    browser.js(
        "const el = document.querySelector(arguments[0]); el.value = arguments[1]; \
         el.dispatchEvent(new Event('input', { bubbles: true })); \
         el.dispatchEvent(new Event('change', { bubbles: true }));",
        json!([css, text]),
    );
}

fn open_settings(server: &Server) -> Browser {
    let browser = Browser::open(server);
    browser.goto("/");
    browser.click("#nav-preferences");
    browser.wait_text("#prefs-title", "Settings");
    browser.wait_visible("#prefs-form");
    browser
}

#[test]
fn test_connection_shows_the_models_or_the_failure() {
    let llm = FakeLlm::start(Vec::new());
    let server = Server::start(&["--workers", "0"]);
    let browser = open_settings(&server);
    browser.wait_text("#prefs-key-state", "not set");
    type_into(&browser, "#prefs-generator", "openai");
    type_into(&browser, "#prefs-llm_url", &llm.url);
    type_into(&browser, "#prefs-llm_model", "test-model");
    browser.click("#prefs-test");
    let ok = browser.wait_text("#prefs-test-result .test-ok", "Connected in");
    assert!(ok.contains("test-model"), "{ok}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = format!(
        "http://127.0.0.1:{}/v1",
        listener.local_addr().expect("addr").port()
    );
    drop(listener);
    type_into(&browser, "#prefs-llm_url", &closed);
    browser.click("#prefs-test");
    let failed = browser.wait_text("#prefs-test-result .test-failed", "Connection failed");
    assert!(failed.contains(&closed), "{failed}");

    // Save keeps what the form says; the key field then says "set".
    type_into(&browser, "#prefs-llm_url", &llm.url);
    type_into(&browser, "#prefs-llm_api_key", "sk-from-the-page");
    browser.click("#prefs-save");
    browser.wait_text("#prefs-key-state", "set");
    let saved = server.get("/api/settings").json();
    assert_eq!(saved["generator"], "openai");
    assert_eq!(saved["llm_url"], llm.url.as_str());
    assert_eq!(saved["llm_api_key_set"], true);
    assert_quiet_console(&browser);
}

#[test]
fn a_field_a_serve_flag_fixed_is_disabled_and_says_so() {
    let server = Server::start(&["--workers", "0", "--llm-model", "flag-model"]);
    let browser = open_settings(&server);
    browser.wait_text("[data-flag='llm_model']", "set by a serve flag");
    let disabled = browser.js(
        "return document.querySelector('#prefs-llm_model').disabled;",
        json!([]),
    );
    assert_eq!(disabled, json!(true));
    let enabled = browser.js(
        "return document.querySelector('#prefs-llm_url').disabled;",
        json!([]),
    );
    assert_eq!(enabled, json!(false));
    assert_quiet_console(&browser);
}

#[test]
fn the_system_view_says_when_the_model_server_cannot_be_reached() {
    let server = Server::start(&["--workers", "0"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = format!(
        "http://127.0.0.1:{}/v1",
        listener.local_addr().expect("addr").port()
    );
    drop(listener);
    let resp = server.request(
        "PUT",
        "/api/settings",
        Some(&json!({"generator": "openai", "llm_url": closed})),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let browser = Browser::open(&server);
    browser.goto("/#system");
    browser.wait_text("#health-stats [data-stat=generator]", "Unreachable");
    let status = browser.wait_text("#health-stats [data-stat=status]", "Degraded");
    assert!(status.contains(&closed), "{status}");
    assert!(status.contains("running"), "{status}");
    assert_quiet_console(&browser);
}
