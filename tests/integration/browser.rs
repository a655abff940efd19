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

use crate::util::{Api, Server, TempDb, create_story, id_of, outline};
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

    fn open_sized(server: &Server, width: u32, height: u32) -> Browser {
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

    fn wait_for_driver(&self) {
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

    fn new_session(&self, chromium: &Path, width: u32, height: u32) -> String {
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
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
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

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
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

    fn reload(&self) {
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

    fn element(&self, css: &str) -> Result<String, String> {
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

    fn page_text(&self) -> String {
        self.send(
            "POST",
            "/execute/sync",
            Some(json!({"script": "return (document.body ? document.body.innerText : '') + '\\n--- visibility: ' + document.visibilityState + '; requests: ' + performance.getEntriesByType('resource').map(e => e.name.replace(location.origin, '') + ' ' + Math.round(e.duration) + 'ms').join(', ');", "args": []})),
        )
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|e| format!("(page text unavailable: {e})"))
    }

    /// The browser console since the last call (chromedriver's log endpoint).
    fn console(&self) -> Vec<String> {
        self.send("POST", "/se/log", Some(json!({"type": "browser"})))
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|entry| format!("{} {}", entry["level"], entry["message"]))
            .collect()
    }

    /// An alert, confirm or prompt dialog is open.
    fn alert_open(&self) -> bool {
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

fn run_card(id: &str) -> String {
    format!("#run-list [data-run-id=\"{id}\"]")
}

#[test]
fn the_page_lists_a_story_created_through_the_api() {
    let server = Server::start(&[]);
    let story = create_story(
        &server,
        json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "outline": outline(12)}),
    );
    let id = story["id"].as_str().unwrap();
    let browser = Browser::open(&server);
    browser.goto("/");
    let card = story_card(id);
    browser.wait_text(&format!("{card} .story-title"), "The Salt Road");
    assert_eq!(
        browser.text(&format!("{card} .chapter-count")).as_deref(),
        Some("12 chapters")
    );
    assert_eq!(
        browser.text(&format!("{card} .count-source")).as_deref(),
        Some("from the outline")
    );
    assert_eq!(
        browser.text(&format!("{card} .story-premise")).as_deref(),
        Some("A courier crosses a drowned country.")
    );
    // The health summary and the metrics come from the same server, on
    // the System view of their own.
    browser.goto("/#system");
    browser.wait_text("#health-stats [data-stat=status]", "Healthy");
    browser.wait_text("#health-stats [data-stat=orphans]", "0");
    browser.wait_text("#metrics-stats [data-stat=hit-rate]", "%");
    browser.wait_text("#metrics-stats [data-stat=sql]", "HTTP requests");
    assert_quiet_console(&browser);
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

#[test]
fn markup_in_user_text_is_shown_literally_and_never_becomes_elements() {
    let server = Server::start(&[]);
    let title = "<img src=x onerror=alert(1)>";
    let premise = "<script>alert(2)</script> and <b>bold</b>";
    let story = create_story(
        &server,
        json!({"title": title, "premise": premise,
               "outline": "## Chapter 1: <img src=y onerror=alert(3)> begins\n## Chapter 2: <b>Ends</b>\n"}),
    );
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    server.wait_for_run(&run, "completed", WAIT);
    let no_injected_elements = |b: &Browser| {
        assert_eq!(
            b.js(
                "return document.querySelectorAll('img, b, script:not([src]), [onerror]').length;",
                json!([])
            ),
            0,
            "user text became elements:\n{}",
            b.page_text()
        );
        assert!(!b.alert_open(), "an alert ran");
    };

    let browser = Browser::open(&server);
    browser.goto("/");
    let card = story_card(id);
    browser.wait_text(&format!("{card} .story-title"), title);
    assert_eq!(
        browser.text(&format!("{card} .story-title")).as_deref(),
        Some(title)
    );
    assert_eq!(
        browser.text(&format!("{card} .story-premise")).as_deref(),
        Some(premise)
    );
    browser.wait_text(&format!("{} .run-title", run_card(&run)), title);
    no_injected_elements(&browser);

    // The reader: the story's title, and chapter titles from the outline.
    browser.click(&format!("{card} .story-title"));
    browser.wait_text("#view-story .detail-title", title);
    browser.wait_text(
        "#chapter-1 .chapter-title",
        "<img src=y onerror=alert(3)> begins",
    );
    browser.wait_text("#chapter-2 .chapter-title", "<b>Ends</b>");
    no_injected_elements(&browser);

    // The run's timeline quotes the chapter titles too.
    browser.goto(&format!("/#run/{run}"));
    browser.wait_text("#view-run .timeline", "<b>Ends</b>");
    browser.wait_text("#view-run .detail-title", title);
    no_injected_elements(&browser);

    // The delete confirmation names the story.
    browser.goto("/");
    browser.click(&format!("{card} .btn-delete"));
    browser.wait_visible("#confirm-dialog");
    assert_eq!(
        browser.text("#confirm-title").as_deref(),
        Some(format!("Delete “{title}”?").as_str())
    );
    no_injected_elements(&browser);
    // Not even an attempt to load `x` or `y` as an image.
    assert_quiet_console(&browser);
}

#[test]
fn a_run_started_from_the_page_progresses_to_completed() {
    let server = Server::start(&["--builtin-delay-ms", "200"]);
    let story = create_story(
        &server,
        json!({"title": "Lanterns Over Kestrel Bay", "premise": "The lanterns are lit for the boats that did not come back.", "outline": outline(15)}),
    );
    let id = story["id"].as_str().unwrap();
    assert!(server.runs_of(id).is_empty());
    let browser = Browser::open(&server);
    browser.goto("/");
    let card = story_card(id);
    browser.wait_text(&format!("{card} .btn-start"), "Start run");
    browser.click(&format!("{card} .btn-start"));

    let run = browser.wait("the run the click started", |_| {
        server
            .runs_of(id)
            .first()
            .map(|r| r["id"].as_str().unwrap().to_string())
    });
    let bar = format!("{} .progress", run_card(&run));
    // Watch the bar: it must show the run part-way before it shows it done.
    let mut seen = Vec::new();
    browser.wait("the run to reach 100% on the page", |b| {
        let state = b.js(
            "const card = document.querySelector(arguments[0]);
             if (!card) return null;
             return {status: card.dataset.status,
                     now: card.querySelector('.progress').getAttribute('aria-valuenow'),
                     pct: card.querySelector('.run-pct').textContent,
                     step: card.querySelector('.run-step').textContent};",
            json!([run_card(&run)]),
        );
        if state.is_null() {
            return None;
        }
        let now: u32 = state["now"].as_str()?.parse().ok()?;
        if seen.last() != Some(&(state["status"].to_string(), now)) {
            seen.push((state["status"].to_string(), now));
        }
        (state["status"] == "completed" && now == 100 && state["pct"] == "100%").then_some(())
    });
    assert!(
        seen.iter()
            .any(|(status, now)| status == "\"running\"" && *now > 0 && *now < 100),
        "the page never showed the run part-way: {seen:?}"
    );
    assert_eq!(
        browser.js(
            "return document.querySelector(arguments[0]).style.width;",
            json!([format!("{bar} .progress-fill")])
        ),
        "100%"
    );
    browser.wait_text(&format!("{} .badge", run_card(&run)), "completed");
    browser.wait_text(&format!("{card} .story-latest"), "completed");
    assert_eq!(
        server.get(&format!("/api/runs/{run}")).json()["status"],
        "completed"
    );

    // Its timeline, then the chapters it wrote.
    browser.click(&format!("{} .btn-details", run_card(&run)));
    browser.wait_text("#view-run .timeline", "all chapters written");
    browser.wait_text("#view-run .big-pct", "100%");
    browser.click("#view-run .detail-meta a");
    browser.wait_text("#view-story .story-main > h2", "15 chapters of 15");
    browser.wait_text("#chapter-15 .chapter-title", "Beat 15");
    let export = browser.js(
        "const a = document.querySelector('#view-story .btn-export');
         return {href: a.getAttribute('href'), download: a.hasAttribute('download')};",
        json!([]),
    );
    assert_eq!(export["href"], format!("/api/stories/{id}/export"));
    assert_eq!(export["download"], true);
    // Progress bars are sized through the CSSOM, which the CSP allows.
    assert_quiet_console(&browser);
}

#[test]
fn api_errors_are_shown_in_words() {
    let server = Server::start(&["--workers", "0"]);
    let browser = Browser::open(&server);
    browser.goto("/");

    // An empty title: the server's VALIDATION_FAILED, in its own words.
    let expected = server.post("/api/stories", &json!({"title": ""})).json()["error"].clone();
    assert_eq!(expected["code"], "VALIDATION_FAILED");
    browser.click("#btn-new-story");
    browser.wait_visible("#story-form");
    browser.click("#story-submit");
    let error = "#story-form-error .api-error";
    browser.wait_text(&format!("{error} .error-code"), "VALIDATION_FAILED");
    assert_eq!(
        browser.text(&format!("{error} .error-message")),
        expected["message"].as_str().map(str::to_string)
    );
    assert_eq!(
        browser.text(&format!("{error} .error-hint")),
        expected["hint"].as_str().map(str::to_string)
    );
    assert!(browser.exists("#story-title[aria-invalid=true]"));

    // Corrected, the same form creates the story.
    browser.type_into("#story-title", "Written from the page");
    browser.type_into("#story-premise", "A story typed into the form.");
    browser.type_into(
        "#story-outline",
        "## Chapter 1: First\n## Chapter 2: Second\n## Chapter 3: Third",
    );
    browser.click("#story-submit");
    browser.wait_gone(error);
    let story = browser.wait("the story in the API", |_| {
        server.get("/api/stories").json()["stories"]
            .as_array()?
            .iter()
            .find(|s| s["title"] == "Written from the page")
            .cloned()
    });
    assert_eq!(story["premise"], "A story typed into the form.");
    assert_eq!(story["chapter_count"], 3);
    let card = story_card(story["id"].as_str().unwrap());
    browser.wait_text(&format!("{card} .chapter-count"), "3 chapters");

    // A CONFLICT: retrying a cancelled run while another run of the same
    // story waits for a worker.
    let id = story["id"].as_str().unwrap();
    let first = id_of(&server.start_run(id, None));
    assert_eq!(
        server
            .post_empty(&format!("/api/runs/{first}/cancel"))
            .status,
        200
    );
    let second = id_of(&server.start_run(id, None));
    browser.reload();
    browser.click(&format!("{} .btn-retry", run_card(&first)));
    let notice = "#notices .notice-error .api-error";
    browser.wait_text(&format!("{notice} .error-code"), "CONFLICT");
    browser.wait_text(
        &format!("{notice} .error-message"),
        &format!("already has an active run {second}"),
    );
    assert!(
        browser
            .text(&format!("{notice} .error-hint"))
            .is_some_and(|hint| !hint.is_empty()),
        "the conflict comes with a hint"
    );
    assert_eq!(
        server.get(&format!("/api/runs/{first}")).json()["status"],
        "cancelled"
    );
}

#[test]
fn deleting_a_story_asks_for_confirmation_first() {
    let server = Server::start(&[]);
    let story = create_story(&server, json!({"title": "Keep or cut", "chapter_count": 2}));
    let id = story["id"].as_str().unwrap();
    let browser = Browser::open(&server);
    browser.goto("/");
    let card = story_card(id);
    browser.wait_text(&format!("{card} .story-title"), "Keep or cut");

    browser.click(&format!("{card} .btn-delete"));
    browser.wait_visible("#confirm-dialog");
    browser.wait_text("#confirm-title", "Keep or cut");
    browser.click("#confirm-cancel");
    browser.wait("the dialog to close", |b| {
        (!b.visible("#confirm-dialog")).then_some(())
    });
    assert_eq!(server.get(&format!("/api/stories/{id}")).status, 200);
    assert!(browser.exists(&card));

    browser.click(&format!("{card} .btn-delete"));
    browser.wait_visible("#confirm-dialog");
    browser.click("#confirm-ok");
    browser.wait_gone(&card);
    assert_eq!(server.get(&format!("/api/stories/{id}")).status, 404);
    browser.wait_text("#notices .notice-ok", "Deleted “Keep or cut”");
}

#[test]
fn a_run_is_cancelled_and_retried_from_the_page() {
    // No workers: the run waits, so each state holds still for the test.
    let server = Server::start(&["--workers", "0"]);
    let story = create_story(
        &server,
        json!({"title": "Stop and go", "outline": outline(3)}),
    );
    let id = story["id"].as_str().unwrap();
    let browser = Browser::open(&server);
    browser.goto("/");
    let card = story_card(id);
    browser.click(&format!("{card} .btn-start"));
    let run = browser.wait("the run the click started", |_| {
        server
            .runs_of(id)
            .first()
            .map(|r| r["id"].as_str().unwrap().to_string())
    });
    let rc = run_card(&run);
    browser.wait_text(&format!("{rc} .badge"), "pending");
    browser.wait_text(&format!("{rc} .run-step"), "waiting for a worker");

    browser.click(&format!("{rc} .btn-cancel"));
    browser.wait_text(&format!("{rc} .badge"), "cancelled");
    assert_eq!(
        server.get(&format!("/api/runs/{run}")).json()["status"],
        "cancelled"
    );
    assert!(!browser.visible(&format!("{rc} .btn-cancel")));

    browser.click(&format!("{rc} .btn-retry"));
    browser.wait_text(&format!("{rc} .badge"), "pending");
    assert_eq!(
        server.get(&format!("/api/runs/{run}")).json()["status"],
        "pending"
    );
}

#[test]
fn the_health_check_and_the_orphan_dry_run_show_what_they_found() {
    let server = Server::start(&["--workers", "0"]);
    let story = create_story(&server, json!({"title": "Soon gone", "chapter_count": 2}));
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    // Delete the story behind storyflow's back, as the sqlite3 shell would
    // (foreign keys off), leaving its run an orphan.
    let db = rusqlite::Connection::open(&server.db).expect("open the database");
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    assert_eq!(
        db.execute("DELETE FROM stories WHERE id = ?1", [id])
            .unwrap(),
        1
    );
    drop(db);
    assert_eq!(server.get("/api/diagnostics/orphans").json()["count"], 1);

    let browser = Browser::open(&server);
    browser.goto("/");
    browser.wait_text(&format!("{} .run-title", run_card(&run)), "missing story");
    // Health and maintenance live on the System view.
    browser.goto("/#system");
    browser.wait_text("#health-stats [data-stat=orphans] .stat-value", "1");

    browser.click("#btn-orphan-dry-run");
    let result = "#maintenance-result[data-kind=orphans]";
    browser.wait_text(result, "would remove 1 orphaned runs");
    browser.wait_text(result, &run[..8]);
    browser.wait_text(result, "nothing changed");
    assert_eq!(server.get("/api/diagnostics/orphans").json()["count"], 1);

    browser.click("#btn-health-check");
    let result = "#maintenance-result[data-kind=health]";
    browser.wait_text(result, "ORPHANED_RUNS");
    browser.wait_text(result, "1 runs point at stories that do not exist");
    browser.wait_text(result, "storyflow health-check --fix");
}

#[test]
fn a_server_with_a_token_asks_for_it_once() {
    let server = Server::start(&["--token", "s3cret-token"]);
    let story = create_story_with_token(&server, "Behind a token", "s3cret-token");
    let browser = Browser::open(&server);
    browser.goto("/");
    browser.wait_visible("#token-dialog");
    browser.type_into("#token-input", "wrong");
    browser.click("#token-submit");
    browser.wait_text("#token-error", "refused");
    browser.type_into("#token-input", "s3cret-token");
    browser.click("#token-submit");
    browser.wait_text(
        &format!("{} .story-title", story_card(&story)),
        "Behind a token",
    );
    assert!(!browser.visible("#token-dialog"));
    assert_eq!(
        browser.js(
            "return sessionStorage.getItem('storyflow.token');",
            json!([])
        ),
        "s3cret-token"
    );
    assert_eq!(
        browser.js("return localStorage.length;", json!([])),
        0,
        "the token is kept for the tab only"
    );
    // A reload in the same tab does not ask again.
    browser.reload();
    browser.wait_text(
        &format!("{} .story-title", story_card(&story)),
        "Behind a token",
    );
    assert!(!browser.visible("#token-dialog"));
}

fn create_story_with_token(server: &Server, title: &str, token: &str) -> String {
    let body = json!({ "title": title }).to_string();
    let resp = server.raw(
        "POST",
        "/api/stories",
        &[
            ("Host".into(), server.addr.to_string()),
            ("Content-Type".into(), "application/json".into()),
            ("Authorization".into(), format!("Bearer {token}")),
        ],
        body.as_bytes(),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    resp.json()["id"].as_str().unwrap().to_string()
}

#[test]
fn the_page_fits_a_phone_and_is_readable_in_dark_mode() {
    let server = Server::start(&[]);
    let story = create_story(
        &server,
        json!({"title": "A title long enough to need wrapping on a narrow phone screen, and then some more words", "outline": outline(3)}),
    );
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    server.wait_for_run(&run, "completed", WAIT);
    let browser = Browser::open_sized(&server, 390, 844);
    // Dark mode, as the operating system would ask for it.
    browser.command(
        "POST",
        "/goog/cdp/execute",
        Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]}})),
    );
    let pages = [
        ("/".to_string(), story_card(id)),
        (
            format!("/#story/{id}"),
            "#view-story #chapter-3".to_string(),
        ),
        (
            format!("/#run/{run}"),
            "#view-run .timeline li[data-kind]".to_string(),
        ),
    ];
    for (path, shown) in pages {
        browser.goto(&path);
        browser.wait_visible(&shown);
        let layout = browser.js(
            "return {client: document.documentElement.clientWidth, scroll: document.documentElement.scrollWidth};",
            json!([]),
        );
        assert_eq!(
            layout["client"], 390,
            "{path}: the page is laid out for the phone's width"
        );
        assert!(
            layout["scroll"].as_u64() <= Some(390),
            "{path} scrolls sideways at phone width: {layout}"
        );
    }
    // The chapter controls, and a chapter open for editing, fit too.
    browser.goto(&format!("/#story/{id}"));
    browser.wait_visible("#view-story #until-chapter");
    browser.wait_visible("#view-story .btn-export-epub");
    browser.click("#chapter-3 .btn-edit-chapter");
    browser.wait_visible("#chapter-3 .chapter-content-input");
    let layout = browser.js(
        "const over = [...document.querySelectorAll('#view-story *')]
           .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
           .map((e) => e.className || e.tagName);
         return {scroll: document.documentElement.scrollWidth, over};",
        json!([]),
    );
    assert!(
        layout["scroll"].as_u64() <= Some(390) && layout["over"] == json!([]),
        "the story page with a chapter being edited overflows at phone width: {layout}"
    );
    browser.goto("/");
    browser.wait_text(
        &format!("{} .story-title", story_card(id)),
        "A title long enough",
    );
    let contrast = browser.js(
        "const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
         const lum = ([r, g, b]) => {
           const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
           return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
         };
         const ratio = (a, b) => { const [x, y] = [lum(rgb(a)), lum(rgb(b))].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
         const body = getComputedStyle(document.body);
         const card = document.querySelector('.card.story');
         const cardStyle = getComputedStyle(card);
         const title = getComputedStyle(card.querySelector('.story-title'));
         const muted = getComputedStyle(card.querySelector('.story-latest .muted'));
         return {dark: matchMedia('(prefers-color-scheme: dark)').matches,
                 background: lum(rgb(body.backgroundColor)),
                 text: ratio(body.color, body.backgroundColor),
                 title: ratio(title.color, cardStyle.backgroundColor),
                 muted: ratio(muted.color, cardStyle.backgroundColor)};",
        json!([]),
    );
    assert_eq!(contrast["dark"], true, "{contrast}");
    assert!(
        contrast["background"].as_f64().unwrap() < 0.05,
        "dark mode has a dark background: {contrast}"
    );
    for key in ["text", "title"] {
        assert!(
            contrast[key].as_f64().unwrap() >= 7.0,
            "{key} contrast below 7:1 in dark mode: {contrast}"
        );
    }
    assert!(
        contrast["muted"].as_f64().unwrap() >= 4.5,
        "muted text contrast below 4.5:1 in dark mode: {contrast}"
    );
}

#[test]
fn a_hidden_tab_stops_polling_and_catches_up_when_shown() {
    // No workers: the run stays pending, so the page polls at its fast rate.
    let server = Server::start(&["--workers", "0"]);
    let story = create_story(&server, json!({"title": "Waiting", "chapter_count": 2}));
    let run = id_of(&server.start_run(&id_of(&story), None));
    let browser = Browser::open(&server);
    browser.goto("/");
    browser.wait_text(&format!("{} .badge", run_card(&run)), "pending");
    browser.wait("fast polling", |b| {
        (b.js(
            "return document.documentElement.dataset.polling;",
            json!([]),
        ) == "fast")
            .then_some(())
    });
    let api_requests = |b: &Browser| {
        b.js(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/')).length;",
            json!([]),
        )
        .as_u64()
        .unwrap()
    };

    // The tab goes to the background (as the browser reports it).
    browser.js(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
         Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
         document.dispatchEvent(new Event('visibilitychange'));",
        json!([]),
    );
    browser.wait("polling to pause", |b| {
        (b.js(
            "return document.documentElement.dataset.polling;",
            json!([]),
        ) == "paused")
            .then_some(())
    });
    let before = api_requests(&browser);
    // Three polling periods of the fast rate pass without a request.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(api_requests(&browser), before, "a hidden tab polled");

    // Back in front: it refreshes at once and polls again.
    browser.js(
        "delete document.hidden; delete document.visibilityState;
         document.dispatchEvent(new Event('visibilitychange'));",
        json!([]),
    );
    browser.wait("a refresh on becoming visible", |b| {
        (api_requests(b) > before).then_some(())
    });
    browser.wait("fast polling again", |b| {
        (b.js(
            "return document.documentElement.dataset.polling;",
            json!([]),
        ) == "fast")
            .then_some(())
    });
}

/// A 3-chapter story written by a server with workers, then served by one
/// without: nothing moves while the page works on it, and a run started
/// later stays pending. The database lives as long as the returned `TempDb`.
fn written_then_served_without_workers(title: &str) -> (TempDb, String, Server) {
    let db = TempDb::new();
    let id = {
        let writer = Server::start_on(&db.path, &[]);
        let story = create_story(&writer, json!({"title": title, "outline": outline(3)}));
        let id = story["id"].as_str().unwrap().to_string();
        let run = id_of(&writer.start_run(&id, None));
        writer.wait_for_run(&run, "completed", WAIT);
        id
    };
    let server = Server::start_on(&db.path, &["--workers", "0"]);
    (db, id, server)
}

#[test]
fn a_chapter_is_edited_from_the_reader() {
    let (_db, id, server) = written_then_served_without_workers("Edited by hand");
    let before = server.chapters(&id);
    assert_eq!(before.len(), 3);
    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{id}"));
    let ch2 = "#chapter-2";
    browser.wait_text(&format!("{ch2} .chapter-title"), "Beat 2");

    // Edit: the title becomes an input, the text a textarea; Cancel leaves
    // the chapter as it was.
    browser.click(&format!("{ch2} .btn-edit-chapter"));
    browser.wait_visible(&format!("{ch2} textarea.chapter-content-input"));
    assert_eq!(
        browser.js(
            "return document.querySelector('#chapter-2 .chapter-content-input').value;",
            json!([])
        ),
        before[1]["content"]
    );
    browser.click(&format!("{ch2} .btn-cancel-edit"));
    browser.wait_gone(&format!("{ch2} .chapter-edit"));
    browser.wait_text(&format!("{ch2} .chapter-title"), "Beat 2");

    // An empty text: the server's 422 VALIDATION_FAILED, in its words.
    browser.click(&format!("{ch2} .btn-edit-chapter"));
    browser.type_into(&format!("{ch2} .chapter-content-input"), "   ");
    let expected = server
        .patch(
            &format!("/api/stories/{id}/chapters/2"),
            &json!({"title": "x", "content": "   "}),
        )
        .json()["error"]
        .clone();
    assert_eq!(expected["code"], "VALIDATION_FAILED");
    browser.click(&format!("{ch2} .btn-save-chapter"));
    let error = format!("{ch2} .chapter-edit-error .api-error");
    browser.wait_text(&format!("{error} .error-code"), "VALIDATION_FAILED");
    assert_eq!(
        browser.text(&format!("{error} .error-message")),
        expected["message"].as_str().map(str::to_string)
    );
    assert_eq!(
        server.chapters(&id),
        before,
        "a refused edit changed nothing"
    );

    // A real edit: the API returns the new title and text, byte for byte.
    let text = "The ferry left at dawn.\n\nNobody waved <b>goodbye</b>.";
    browser.type_into(&format!("{ch2} .chapter-title-input"), "The Ferry, revised");
    browser.type_into(&format!("{ch2} .chapter-content-input"), text);
    browser.click(&format!("{ch2} .btn-save-chapter"));
    browser.wait_gone(&format!("{ch2} .chapter-edit"));
    browser.wait_text(&format!("{ch2} .chapter-title"), "The Ferry, revised");
    browser.wait_text(ch2, "Nobody waved <b>goodbye</b>.");
    let chapter = server.get(&format!("/api/stories/{id}/chapters/2")).json();
    assert_eq!(chapter["title"], "The Ferry, revised");
    assert_eq!(chapter["content"], text);
    let after = server.chapters(&id);
    assert_eq!(after[0], before[0]);
    assert_eq!(after[2], before[2]);
    assert_eq!(
        browser.js(
            "return document.querySelectorAll('#chapter-2 > p').length;",
            json!([])
        ),
        2,
        "the edited text is shown as its two paragraphs"
    );
    assert_eq!(
        browser.js(
            "return document.querySelectorAll('#view-story b').length;",
            json!([])
        ),
        0
    );

    // Rewriting while another run of the story is active: the 409 in words.
    let pending = id_of(&server.start_run(&id, None));
    browser.click("#chapter-1 .btn-rewrite-chapter");
    browser.wait_visible("#confirm-dialog");
    browser.click("#confirm-ok");
    let notice = "#notices .notice-error .api-error";
    browser.wait_text(&format!("{notice} .error-code"), "CONFLICT");
    browser.wait_text(&format!("{notice} .error-message"), &pending);
    assert!(
        browser
            .text(&format!("{notice} .error-hint"))
            .is_some_and(|hint| !hint.is_empty()),
        "the conflict comes with a hint"
    );
    assert_eq!(server.runs_of(&id).len(), 2, "no rewrite run was queued");
    assert_quiet_console_except(&browser, &["409", "422"]);
}

#[test]
fn one_chapter_is_rewritten_from_the_reader() {
    let server = Server::start(&["--builtin-delay-ms", "100"]);
    let story = create_story(
        &server,
        json!({"title": "Say it again", "outline": outline(3)}),
    );
    let id = story["id"].as_str().unwrap();
    let first = id_of(&server.start_run(id, None));
    server.wait_for_run(&first, "completed", WAIT);
    let before = server.chapters(id);
    assert_eq!(before.len(), 3);

    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{id}"));
    browser.wait_text("#chapter-2 .chapter-title", "Beat 2");
    browser.click("#chapter-2 .btn-rewrite-chapter");
    browser.wait_visible("#confirm-dialog");
    browser.wait_text("#confirm-title", "Rewrite chapter 2");
    browser.click("#confirm-ok");

    let run = browser.wait("the rewrite run in GET /api/runs", |_| {
        server.get("/api/runs").json()["runs"]
            .as_array()?
            .iter()
            .find(|r| r["story_id"] == id && r["regenerate_chapter"] == 2)
            .map(|r| r["id"].as_str().unwrap().to_string())
    });
    let done = server.wait_for_run(&run, "completed", WAIT);
    assert_eq!(done["regenerate_chapter"], 2);
    // Shown like any run, saying what it rewrote.
    let card = format!("#view-story [data-run-id=\"{run}\"]");
    browser.wait_text(&format!("{card} .badge"), "completed");
    browser.wait_text(&format!("{card} .run-scope"), "rewrite of chapter 2");
    browser.wait_text("#chapter-2 .chapter-meta", "changed");
    browser.goto("/");
    browser.wait_text(
        &format!("{} .run-scope", run_card(&run)),
        "rewrite of chapter 2",
    );

    let after = server.chapters(id);
    assert_eq!(after.len(), 3);
    assert_eq!(after[0], before[0], "chapter 1 changed");
    assert_eq!(after[2], before[2], "chapter 3 changed");
    assert_eq!(
        after[1]["run_id"],
        run.as_str(),
        "chapter 2 comes from the rewrite"
    );
    assert!(!after[1]["updated_at"].is_null(), "{}", after[1]);
    assert_quiet_console(&browser);
}

#[test]
fn a_run_started_from_the_page_can_stop_after_a_chapter() {
    let server = Server::start(&[]);
    let story = create_story(
        &server,
        json!({"title": "Half told", "outline": outline(5)}),
    );
    let id = story["id"].as_str().unwrap();
    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{id}"));
    browser.wait_text("#view-story .btn-start", "Start run");
    browser.type_into("#until-chapter", "2");
    browser.click("#view-story .btn-start");

    let run = browser.wait("the run the click started", |_| {
        server
            .runs_of(id)
            .first()
            .map(|r| r["id"].as_str().unwrap().to_string())
    });
    let done = server.wait_for_run(&run, "completed", WAIT);
    assert_eq!(done["until_chapter"], 2, "{done}");
    assert_eq!(done["chapters_done"], 2, "{done}");
    let chapters = server.chapters(id);
    assert_eq!(
        chapters
            .iter()
            .map(|c| c["number"].clone())
            .collect::<Vec<_>>(),
        vec![json!(1), json!(2)]
    );
    let card = format!("#view-story [data-run-id=\"{run}\"]");
    browser.wait_text(&format!("{card} .badge"), "completed");
    browser.wait_text(&format!("{card} .run-scope"), "up to chapter 2");
    browser.wait_text("#view-story .story-main > h2", "2 chapters of 5");
    browser.wait_gone("#chapter-3");

    // Left empty, the next run writes the rest.
    assert_eq!(
        browser.js(
            "return document.querySelector('#until-chapter').value;",
            json!([])
        ),
        ""
    );
    browser.click("#view-story .btn-start");
    let rest = browser.wait("a second run", |_| {
        let runs = server.runs_of(id);
        (runs.len() == 2).then(|| runs[0]["id"].as_str().unwrap().to_string())
    });
    let done = server.wait_for_run(&rest, "completed", WAIT);
    assert!(done["until_chapter"].is_null(), "{done}");
    assert_eq!(server.chapters(id).len(), 5);
    browser.wait_text("#view-story .story-main > h2", "5 chapters of 5");
    assert_quiet_console(&browser);
}

#[test]
fn the_epub_export_is_a_download_link() {
    let server = Server::start(&[]);
    let story = create_story(&server, json!({"title": "Bound", "outline": outline(2)}));
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    server.wait_for_run(&run, "completed", WAIT);
    let browser = Browser::open(&server);
    let link = |b: &Browser, css: &str| {
        b.js(
            "const a = document.querySelector(arguments[0]);
             return a && {href: a.getAttribute('href'), download: a.hasAttribute('download'),
                          text: a.textContent, visible: a.getClientRects().length > 0};",
            json!([css]),
        )
    };
    browser.goto(&format!("/#story/{id}"));
    browser.wait_visible("#view-story .btn-export-epub");
    let epub = link(&browser, "#view-story .btn-export-epub");
    assert_eq!(
        epub["href"],
        format!("/api/stories/{id}/export?format=epub")
    );
    assert_eq!(epub["download"], true);
    assert_eq!(epub["visible"], true);
    // Next to the Markdown link, which is unchanged.
    let md = link(&browser, "#view-story .btn-export");
    assert_eq!(md["href"], format!("/api/stories/{id}/export"));
    assert_eq!(
        browser.js(
            "return document.querySelector('#view-story .btn-export').nextElementSibling.classList.contains('btn-export-epub');",
            json!([])
        ),
        true
    );
    // The story card on the dashboard has it too.
    browser.goto("/");
    let card = story_card(id);
    browser.wait_visible(&format!("{card} .btn-export-epub"));
    let epub = link(&browser, &format!("{card} .btn-export-epub"));
    assert_eq!(
        epub["href"],
        format!("/api/stories/{id}/export?format=epub")
    );
    assert_eq!(epub["download"], true);
    // What the link points at is an EPUB.
    let resp = server.get(&format!("/api/stories/{id}/export?format=epub"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/epub+zip"));
    assert_quiet_console(&browser);
}

/// Where the stories heading, the New story button, the first story and
/// every health or metrics panel on screen are, in viewport pixels.
fn first_screen(browser: &Browser) -> Value {
    browser.js(
        "const box = (e) => {
           if (!e) return null;
           const r = e.getBoundingClientRect();
           return {top: r.top, bottom: r.bottom, shown: e.getClientRects().length > 0};
         };
         const panels = [...document.querySelectorAll('#health-stats, #metrics-stats, .card.system, #maintenance-result')]
           .map(box).filter((b) => b.shown);
         return {viewport: innerHeight, scrolled: scrollY,
                 heading: box(document.querySelector('#stories-title')),
                 button: box(document.querySelector('#btn-new-story')),
                 story: box(document.querySelector('#story-list .story')),
                 panels, panels_in_page: document.querySelectorAll('#health-stats, #metrics-stats').length};",
        json!([]),
    )
}

#[test]
fn the_first_screen_shows_the_stories_and_new_story_above_any_system_panel() {
    let server = Server::start(&[]);
    let story = create_story(
        &server,
        json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "outline": outline(3)}),
    );
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    server.wait_for_run(&run, "completed", WAIT);
    for (width, height) in [(1280, 800), (390, 844)] {
        let browser = Browser::open_sized(&server, width, height);
        browser.goto("/");
        browser.wait_text(&format!("{} .story-title", story_card(id)), "The Salt Road");
        // The story says how its last run went, in words.
        browser.wait_text(
            &format!("{} .story-progress", story_card(id)),
            "done · 3 chapters",
        );
        let screen = first_screen(&browser);
        let at = format!("{width}x{height}: {screen}");
        assert_eq!(screen["scrolled"], 0, "{at}");
        assert_eq!(screen["panels_in_page"], 2, "the panels still exist: {at}");
        let viewport = screen["viewport"].as_f64().unwrap();
        let mut lowest = 0.0_f64;
        for part in ["heading", "button", "story"] {
            let b = &screen[part];
            assert_eq!(b["shown"], true, "{part} is shown: {at}");
            let (top, bottom) = (b["top"].as_f64().unwrap(), b["bottom"].as_f64().unwrap());
            assert!(
                top >= 0.0 && bottom <= viewport,
                "{part} is on the first screen: {at}"
            );
            if part != "story" {
                lowest = lowest.max(bottom);
            }
        }
        for panel in screen["panels"].as_array().unwrap() {
            assert!(
                panel["top"].as_f64().unwrap() >= lowest,
                "a health or metrics panel is above the stories: {at}"
            );
        }
        // The top bar keeps a small health pill, which leads to the rest.
        browser.wait_text("#health-pill", "healthy");
        assert_eq!(
            browser.js(
                "return document.querySelector('#health-pill').getAttribute('href');",
                json!([])
            ),
            "#system"
        );
        assert_quiet_console(&browser);
    }
}

#[test]
fn on_a_phone_the_chapter_list_of_a_story_is_reachable() {
    let server = Server::start(&[]);
    let story = create_story(&server, json!({"title": "Pocket", "outline": outline(6)}));
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    server.wait_for_run(&run, "completed", WAIT);
    let browser = Browser::open_sized(&server, 390, 844);
    browser.goto("/");
    browser.click(&format!("{} .story-title", story_card(id)));
    browser.wait_visible("#view-story .toc .toc-link");
    assert_eq!(
        browser.js(
            "return document.querySelectorAll('#view-story .toc .toc-link').length;",
            json!([])
        ),
        6
    );
    // The list comes before the chapters it leads to.
    assert_eq!(
        browser.js(
            "return document.querySelector('.toc').getBoundingClientRect().top
                  < document.querySelector('#chapter-1').getBoundingClientRect().top;",
            json!([])
        ),
        true
    );
    browser.click("#view-story .toc li:nth-child(6) .toc-link");
    browser.wait("chapter 6 scrolled into view", |b| {
        (b.js(
            "const r = document.querySelector('#chapter-6').getBoundingClientRect();
             return r.top >= 0 && r.top < innerHeight;",
            json!([]),
        ) == true)
            .then_some(())
    });
}

#[test]
fn the_system_view_shows_health_metrics_and_maintenance() {
    let server = Server::start(&["--workers", "0"]);
    create_story(
        &server,
        json!({"title": "Only a story", "chapter_count": 2}),
    );
    let browser = Browser::open(&server);
    browser.goto("/");
    browser.wait_text("#story-list .story-title", "Only a story");
    assert!(
        !browser.visible("#health-stats"),
        "health is not on the stories view"
    );
    assert!(
        !browser.visible("#metrics-stats"),
        "metrics are not on the stories view"
    );
    assert!(!browser.visible("#btn-orphan-dry-run"));

    // The pill in the top bar leads there.
    browser.wait_text("#health-pill", "healthy");
    browser.click("#health-pill");
    browser.wait_visible("#view-system");
    assert_eq!(browser.js("return location.hash;", json!([])), "#system");
    assert!(!browser.visible("#view-stories"));
    browser.wait_text("#health-stats [data-stat=status]", "Healthy");
    browser.wait_text("#health-stats [data-stat=orphans]", "0");
    browser.wait_text("#metrics-stats [data-stat=hit-rate]", "%");
    browser.wait_text("#metrics-stats [data-stat=sql]", "HTTP requests");
    assert_eq!(
        browser.js(
            "return document.querySelector('#nav-system').getAttribute('aria-current');",
            json!([])
        ),
        "page"
    );
    browser.click("#btn-health-check");
    browser.wait_text("#maintenance-result[data-kind=health]", "Healthy");

    // Back to the stories; `#/system` is the same view.
    browser.click("#view-system .back");
    browser.wait_visible("#view-stories");
    assert!(!browser.visible("#view-system"));
    browser.goto("/#/system");
    browser.wait_visible("#view-system #health-stats");
    browser.wait_text("#health-stats [data-stat=status]", "Healthy");
    assert_quiet_console(&browser);
}

fn title_is(browser: &Browser, expected: &str) {
    browser.wait(&format!("the document title `{expected}`"), |b| {
        (b.js("return document.title;", json!([])) == expected).then_some(())
    });
}

#[test]
fn the_document_title_follows_the_view() {
    // No workers: no run is being written, so no percentage in the title.
    let server = Server::start(&["--workers", "0"]);
    let story = create_story(
        &server,
        json!({"title": "The Salt Road", "outline": outline(3)}),
    );
    let id = story["id"].as_str().unwrap();
    let browser = Browser::open(&server);
    browser.goto("/");
    title_is(&browser, "Stories · storyflow");
    browser.click(&format!("{} .story-title", story_card(id)));
    title_is(&browser, "The Salt Road · storyflow");
    browser.click("#nav-system");
    title_is(&browser, "System · storyflow");
    browser.click("#nav-stories");
    title_is(&browser, "Stories · storyflow");
    let run = id_of(&server.start_run(id, None));
    browser.goto(&format!("/#run/{run}"));
    title_is(&browser, "Run · The Salt Road · storyflow");
    browser.goto(&format!("/#story/{id}"));
    title_is(&browser, "The Salt Road · storyflow");
}

/// Whether a `beforeunload` now would make the browser ask.
fn leaving_would_ask(browser: &Browser) -> bool {
    browser.js(
        "const ev = new Event('beforeunload', {cancelable: true});
         window.dispatchEvent(ev);
         return ev.defaultPrevented;",
        json!([]),
    ) == true
}

#[test]
fn leaving_an_unsaved_chapter_edit_asks_first() {
    let (_db, id, server) = written_then_served_without_workers("Hand edits");
    let before = server.chapters(&id);
    let browser = Browser::open(&server);
    browser.goto("/");
    browser.click(&format!("{} .story-title", story_card(&id)));
    browser.wait_text("#chapter-2 .chapter-title", "Beat 2");
    let content = "#chapter-2 .chapter-content-input";
    let typed = "A sentence the writer has not saved yet.";

    // An editor opened and left untouched drops nothing: no question.
    browser.click("#chapter-2 .btn-edit-chapter");
    browser.wait_visible(content);
    assert!(!leaving_would_ask(&browser));
    browser.click("#view-story .back");
    browser.wait_visible("#view-stories");
    assert!(!browser.visible("#confirm-dialog"));

    browser.click(&format!("{} .story-title", story_card(&id)));
    browser.click("#chapter-2 .btn-edit-chapter");
    browser.type_into(content, typed);
    assert!(
        leaving_would_ask(&browser),
        "beforeunload is set while the edit is dirty"
    );
    let edit_kept = |b: &Browser| {
        assert!(
            b.visible("#view-story"),
            "still on the story:\n{}",
            b.page_text()
        );
        assert_eq!(
            b.js(
                "return document.querySelector(arguments[0]).value;",
                json!([content])
            ),
            typed,
            "the unsaved text is still in the editor"
        );
        assert_eq!(
            b.js("return location.hash;", json!([])),
            format!("#story/{id}")
        );
    };

    // A link: asked; "Keep editing" keeps the edit where it was.
    browser.click("#view-story .back");
    browser.wait_visible("#confirm-dialog");
    browser.wait_text("#confirm-title", "Discard your changes to chapter 2?");
    browser.click("#confirm-cancel");
    browser.wait("the dialog to close", |b| {
        (!b.visible("#confirm-dialog")).then_some(())
    });
    edit_kept(&browser);

    // The browser's back button: asked too, and dismissing keeps the edit.
    browser.js("history.back();", json!([]));
    browser.wait_visible("#confirm-dialog");
    browser.click("#confirm-cancel");
    browser.wait("the dialog to close", |b| {
        (!b.visible("#confirm-dialog")).then_some(())
    });
    edit_kept(&browser);

    // The editor's own Cancel asks as well.
    browser.click("#chapter-2 .btn-cancel-edit");
    browser.wait_visible("#confirm-dialog");
    browser.click("#confirm-cancel");
    browser.wait("the dialog to close", |b| {
        (!b.visible("#confirm-dialog")).then_some(())
    });
    edit_kept(&browser);

    // Another view, accepted: the page leaves, and nothing was saved.
    browser.click("#health-pill");
    browser.wait_visible("#confirm-dialog");
    browser.click("#confirm-ok");
    browser.wait_visible("#view-system");
    title_is(&browser, "System · storyflow");
    assert!(!leaving_would_ask(&browser), "nothing is left to lose");
    assert_eq!(server.chapters(&id), before, "leaving saved nothing");

    // Back on the story, the chapter reads as it was.
    browser.goto(&format!("/#story/{id}"));
    browser.wait_text("#chapter-2 .chapter-title", "Beat 2");
    assert!(!browser.exists(content));
    assert_quiet_console(&browser);
}

#[test]
fn progress_is_worded_for_a_writer() {
    // Slow enough that each chapter holds still while the page polls.
    let server = Server::start(&["--builtin-delay-ms", "1000"]);
    let story = create_story(&server, json!({"title": "Twelve", "outline": outline(12)}));
    let id = story["id"].as_str().unwrap();
    let browser = Browser::open(&server);
    browser.goto("/");
    browser.wait_text(&format!("{} .story-title", story_card(id)), "Twelve");
    let run = id_of(&server.start_run(id, None));
    let step = format!("{} .run-step", run_card(&run));
    // "writing chapter 4 of 12 · 3 done", on the run and on its story.
    let (writing, done) = browser.wait("a chapter being written", |b| {
        let text = b.text(&step)?;
        let rest = text.strip_prefix("writing chapter ")?;
        let (number, rest) = rest.split_once(" of 12 · ")?;
        let done = rest.strip_suffix(" done")?;
        Some((number.parse::<u32>().ok()?, done.parse::<u32>().ok()?))
    });
    assert_eq!(
        done + 1,
        writing,
        "the chapter being written follows the ones done"
    );
    browser.wait_text(&format!("{} .story-progress", story_card(id)), " of 12 · ");
    server.wait_for_run(&run, "completed", Duration::from_secs(60));
    browser.wait_text(&step, "done · 12 chapters");
    assert_eq!(browser.text(&step).as_deref(), Some("done · 12 chapters"));
    browser.wait_text(
        &format!("{} .story-progress", story_card(id)),
        "done · 12 chapters",
    );

    // Every other state, in the page's words.
    let cases = [
        (
            json!({"status": "pending", "attempt": 0, "chapters_done": 0, "chapters_total": 12}),
            "waiting for a worker",
        ),
        (
            json!({"status": "running", "step": "outline", "chapters_done": 0, "chapters_total": 12}),
            "writing the outline",
        ),
        (
            json!({"status": "running", "step": "chapter 4/12", "chapters_done": 3, "chapters_total": 12}),
            "writing chapter 4 of 12 · 3 done",
        ),
        (
            json!({"status": "running", "step": "finalize", "chapters_done": 12, "chapters_total": 12}),
            "finishing",
        ),
        (
            json!({"status": "completed", "step": "finalize", "chapters_done": 12, "chapters_total": 12}),
            "done · 12 chapters",
        ),
        (
            json!({"status": "failed", "step": "chapter 5/12", "chapters_done": 4, "chapters_total": 12,
                "error": {"code": "GENERATOR_UNAVAILABLE", "message": "the model server did not answer"}}),
            "failed at chapter 5: the model server did not answer",
        ),
    ];
    for (run, expected) in cases {
        assert_eq!(
            browser.js("return progressText(arguments[0]);", json!([run])),
            expected,
            "{run}"
        );
    }
    assert_quiet_console(&browser);
}

#[test]
fn a_failed_run_says_where_it_stopped_and_why() {
    let llm = crate::util::fake_llm::FakeLlm::start(vec![crate::util::fake_llm::status(
        401,
        r#"{"error":{"message":"Invalid API key","type":"invalid_request_error"}}"#,
    )]);
    let server = Server::start(&llm.args(&[]));
    let story = create_story(
        &server,
        json!({"title": "Locked out", "outline": outline(2)}),
    );
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    server.wait_for_run(&run, "failed", WAIT);
    let browser = Browser::open(&server);
    browser.goto("/");
    let step = format!("{} .run-step", run_card(&run));
    let text = browser.wait_text(&step, "failed at chapter 1: ");
    assert!(text.contains("Invalid API key"), "{text}");
    browser.wait_text(
        &format!("{} .story-progress", story_card(id)),
        "failed at chapter 1: ",
    );
    browser.wait_text(
        &format!("{} .run-error .error-code", run_card(&run)),
        "GENERATOR_AUTH",
    );
    // The run's page says where; its error box says why.
    browser.goto(&format!("/#run/{run}"));
    browser.wait_text("#view-run .run-progress-text", "failed at chapter 1");
    browser.wait_text("#view-run .run-error .error-message", "Invalid API key");
    assert_quiet_console(&browser);
}

#[test]
fn text_from_the_builtin_generator_is_labelled_as_placeholder_text() {
    let db = TempDb::new();
    let id = {
        let writer = Server::start_on(&db.path, &[]);
        let story = create_story(&writer, json!({"title": "Stand-in", "outline": outline(2)}));
        let id = story["id"].as_str().unwrap().to_string();
        let run = id_of(&writer.start_run(&id, None));
        writer.wait_for_run(&run, "completed", WAIT);
        assert_eq!(
            writer.get("/api/health").json()["generator"]["name"],
            "builtin"
        );
        let browser = Browser::open(&writer);
        browser.goto(&format!("/#story/{id}"));
        browser.wait_text("#chapter-2 .chapter-title", "Beat 2");
        browser.wait_visible("#view-story .placeholder-notice");
        browser.wait_text(
            "#view-story .placeholder-notice",
            "Placeholder text from the built-in generator",
        );
        browser.wait_text("#view-story .placeholder-notice", "connect a model server");
        browser.wait_visible("#view-story .toc-block .placeholder-tag");
        assert_quiet_console(&browser);
        id
    };
    // The same chapters served with a model server configured: no label.
    let llm = crate::util::fake_llm::FakeLlm::start(Vec::new());
    let server = Server::start_on(&db.path, &llm.args(&["--workers", "0"]));
    assert_eq!(
        server.get("/api/health").json()["generator"]["name"],
        "openai"
    );
    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{id}"));
    browser.wait_text("#chapter-2 .chapter-title", "Beat 2");
    browser.wait_text("#footer-version", "storyflow ");
    browser.wait("the health to be known", |b| {
        (b.js("return Boolean(state.health);", json!([])) == true).then_some(())
    });
    assert!(!browser.visible("#view-story .placeholder-notice"));
    assert!(!browser.visible("#view-story .placeholder-tag"));
}
