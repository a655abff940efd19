//! The status page in a real browser: headless Chromium driven over the W3C
//! WebDriver protocol (chromedriver on a free port, spoken with ureq),
//! against the real server with a temporary database.
//!
//! Every check waits for what a writer would see, polling for up to
//! [`WAIT`]; no test sleeps and then assumes. (The one pause watches a
//! hidden tab stay quiet: an absence takes time to see.) The tests need the apt
//! packages `chromium` and `chromium-driver`: `scripts/test.sh` installs
//! them, and without them these tests fail saying so rather than skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::util::Server;
use serde_json::{Value, json};

/// How long any one thing may take to appear on the page.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// The W3C name of an element reference in WebDriver JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser at a time: Chromium is heavy, and parallel instances on a
/// small machine make every wait slower.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// `/usr/bin/NAME` or the first NAME on the PATH.
fn program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::iter::once(PathBuf::from("/usr/bin"))
        .chain(std::env::split_paths(&path))
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn browser_programs() -> (PathBuf, PathBuf) {
    let chromium = program(&["chromium", "chromium-browser"]);
    let driver = program(&["chromedriver"]);
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => (chromium, driver),
        (chromium, driver) => panic!(
            "the browser tests need headless Chromium and ChromeDriver, and {} not found: \
             run scripts/test.sh, which installs the apt packages chromium and chromium-driver \
             (or `apt-get install -y chromium chromium-driver`)",
            match (chromium.is_none(), driver.is_none()) {
                (true, true) => "neither chromium nor chromedriver was",
                (true, false) => "chromium was",
                _ => "chromedriver was",
            }
        ),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A headless Chromium session on the page of `server`. Dropping it ends
/// the session and kills chromedriver (and with it the browser).
pub(crate) struct Browser {
    agent: ureq::Agent,
    driver: Child,
    driver_url: String,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
    _one: MutexGuard<'static, ()>,
}

impl Browser {
    /// A desktop-sized browser on `server`.
    pub(crate) fn open(server: &Server) -> Browser {
        Browser::open_sized(server, 1280, 900)
    }

    pub(crate) fn open_sized(server: &Server, width: u32, height: u32) -> Browser {
        let (chromium, chromedriver) = browser_programs();
        let one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start {}: {e}; run scripts/test.sh",
                    chromedriver.display()
                )
            });
        let driver_url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let mut browser = Browser {
            agent,
            driver,
            driver_url,
            session: String::new(),
            base: server.url(""),
            _profile: profile,
            _one: one,
        };
        browser.wait_for_driver();
        browser.session = browser.new_session(&chromium, width, height);
        browser
    }

    pub(crate) fn wait_for_driver(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = self
                .agent
                .get(format!("{}/status", self.driver_url))
                .call()
                .ok()
                .and_then(|r| r.into_body().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn new_session(&self, chromium: &Path, width: u32, height: u32) -> String {
        let profile = self._profile.path().display().to_string();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--no-proxy-server".into(),
            format!("--user-data-dir={profile}"),
            format!("--window-size={width},{height}"),
        ];
        let mut options = json!({"binary": chromium, "args": args});
        if width < 500 {
            // Narrower than Chromium's smallest window: emulate a phone.
            options["mobileEmulation"] = json!({"deviceMetrics": {
                "width": width, "height": height, "pixelRatio": 2.0, "touch": true}});
        }
        let body = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
            "unhandledPromptBehavior": "ignore",
        }}});
        let resp = self
            .agent
            .post(format!("{}/session", self.driver_url))
            .send_json(&body)
            .expect("chromedriver answers");
        let value: Value = resp.into_body().read_json().expect("session JSON");
        value["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| {
                panic!("chromedriver could not start Chromium: {value}; run scripts/test.sh")
            })
            .to_string()
    }

    /// One WebDriver command on this session; `Err` carries the protocol's
    /// error and message.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/session/{}{}", self.driver_url, self.session, path);
        let resp = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self.agent.post(&url).send_json(body.unwrap_or(json!({}))),
        }
        .map_err(|e| format!("{method} {path}: {e}"))?;
        let ok = resp.status().is_success();
        let value: Value = resp
            .into_body()
            .read_json()
            .map_err(|e| format!("{method} {path}: {e}"))?;
        if ok {
            Ok(value["value"].clone())
        } else {
            Err(format!(
                "{}: {}",
                value["value"]["error"].as_str().unwrap_or("error"),
                value["value"]["message"].as_str().unwrap_or_default()
            ))
        }
    }

    pub(crate) fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.send(method, path, body)
            .unwrap_or_else(|e| panic!("webdriver {e}"))
    }

    /// Opens a page of the server, `path` like `/` or `/#story/ID`.
    pub(crate) fn goto(&self, path: &str) {
        self.command(
            "POST",
            "/url",
            Some(json!({"url": format!("{}{path}", self.base)})),
        );
    }

    pub(crate) fn reload(&self) {
        self.command("POST", "/refresh", None);
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub(crate) fn js(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The text of the first element matching `css`, if there is one.
    pub(crate) fn text(&self, css: &str) -> Option<String> {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            json!([css]),
        )
        .as_str()
        .map(str::to_string)
    }

    pub(crate) fn exists(&self, css: &str) -> bool {
        self.js(
            "return document.querySelector(arguments[0]) !== null;",
            json!([css]),
        ) == true
    }

    pub(crate) fn visible(&self, css: &str) -> bool {
        self.js(
            "const e = document.querySelector(arguments[0]); \
             return e !== null && e.getClientRects().length > 0;",
            json!([css]),
        ) == true
    }

    /// Polls `check` until it gives a value; panics after [`WAIT`] with
    /// what the page showed and what the browser logged.
    pub(crate) fn wait<T>(&self, what: &str, mut check: impl FnMut(&Browser) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(value) = check(self) {
                return value;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {WAIT:?} waiting for {what}\n--- page text ---\n{}\n--- browser console ---\n{}",
                    self.page_text(),
                    self.console().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for an element matching `css` whose text contains `needle`;
    /// returns its whole text.
    pub(crate) fn wait_text(&self, css: &str, needle: &str) -> String {
        self.wait(&format!("`{needle}` in {css}"), |b| {
            b.text(css).filter(|text| text.contains(needle))
        })
    }

    pub(crate) fn wait_visible(&self, css: &str) {
        self.wait(&format!("{css} to be visible"), |b| {
            b.visible(css).then_some(())
        });
    }

    pub(crate) fn wait_gone(&self, css: &str) {
        self.wait(&format!("{css} to disappear"), |b| {
            (!b.exists(css)).then_some(())
        });
    }

    pub(crate) fn element(&self, css: &str) -> Result<String, String> {
        let found = self.send(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        found[ELEMENT]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no element reference for {css} in {found}"))
    }

    /// Clicks the element matching `css` as a user would (it must be
    /// visible and enabled), waiting for it to be there.
    pub(crate) fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let clicked = self.element(css).and_then(|id| {
                if self.send("GET", &format!("/element/{id}/enabled"), None)? != true {
                    return Err("it is disabled".into());
                }
                // Into the middle of the window, as a user scrolls to what
                // they click: not under the sticky top bar.
                self.send(
                    "POST",
                    "/execute/sync",
                    Some(
                        json!({"script": "arguments[0].scrollIntoView({block: 'center'});",
                                "args": [{ ELEMENT: id }]}),
                    ),
                )?;
                self.send("POST", &format!("/element/{id}/click"), None)
            });
            match clicked {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => panic!(
                    "could not click {css} within {WAIT:?}: {e}\n--- page text ---\n{}",
                    self.page_text()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Types `text` into the field matching `css` (after clearing it).
    pub(crate) fn type_into(&self, css: &str, text: &str) {
        let id = self.wait(&format!("the field {css}"), |b| b.element(css).ok());
        self.command("POST", &format!("/element/{id}/clear"), None);
        self.command(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub(crate) fn page_text(&self) -> String {
        self.send(
            "POST",
            "/execute/sync",
            Some(json!({"script": "return (document.body ? document.body.innerText : '') + '\\n--- visibility: ' + document.visibilityState + '; requests: ' + performance.getEntriesByType('resource').map(e => e.name.replace(location.origin, '') + ' ' + Math.round(e.duration) + 'ms').join(', ');", "args": []})),
        )
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|e| format!("(page text unavailable: {e})"))
    }

    /// The browser console since the last call (chromedriver's log endpoint).
    pub(crate) fn console(&self) -> Vec<String> {
        self.send("POST", "/se/log", Some(json!({"type": "browser"})))
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|entry| format!("{} {}", entry["level"], entry["message"]))
            .collect()
    }

    /// An alert, confirm or prompt dialog is open.
    pub(crate) fn alert_open(&self) -> bool {
        self.send("GET", "/alert/text", None).is_ok()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(format!("{}/session/{}", self.driver_url, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

pub(crate) fn story_card(id: &str) -> String {
    format!("#story-list [data-story-id=\"{id}\"]")
}

pub(crate) fn run_card(id: &str) -> String {
    format!("#run-list [data-run-id=\"{id}\"]")
}

/// The page ran under its own CSP without a complaint: no refused script or
/// style, no failed request, no script error.
pub(crate) fn assert_quiet_console(browser: &Browser) {
    assert_quiet_console_except(browser, &[]);
}

/// Like [`assert_quiet_console`], but a refused request with one of
/// `statuses` (one a test provokes on purpose) is expected.
pub(crate) fn assert_quiet_console_except(browser: &Browser, statuses: &[&str]) {
    let problems: Vec<String> = browser
        .console()
        .into_iter()
        .filter(|line| line.contains("SEVERE") || line.contains("Content Security Policy"))
        .filter(|line| !statuses.iter().any(|status| line.contains(status)))
        .collect();
    assert!(problems.is_empty(), "browser console: {problems:#?}");
}
