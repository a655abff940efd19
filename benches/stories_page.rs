//! The stories page with 10,000 stories: headless Chromium (over the W3C
//! WebDriver protocol, chromedriver on a free port, as the browser tests
//! drive it) loads `/` from the real server ~20 times; each load's figure is
//! the page's own clock (`performance.now()`, whose zero is the navigation's
//! start) at the first animation frame after the first story card is in
//! `#story-list`: the first screen of stories drawn. Target: median and p95
//! under 300 ms. It also reports how many stories the page asked the API
//! for (the list is paged: `GET /api/stories?limit=`), read from the page's
//! resource timing entries.
//!
//! `cargo bench --bench stories_page` — `STORIES_PAGE_BENCH_STORIES`,
//! `STORIES_PAGE_BENCH_LOADS` to change the sizes. Needs the apt packages
//! `chromium` and `chromium-driver`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "data/mod.rs"]
mod data;
#[path = "support/mod.rs"]
mod support;

use support::{Row, Server, percentile, print_table};

/// Installed before any script of each page: when the first story card is
/// in the list, waits for the next frame (the card drawn) and keeps the
/// time. A MutationObserver sees the insertion itself, where polling from
/// the driver would add its own round trips.
const FIRST_ROWS_PROBE: &str = r#"
(() => {
  const seen = () => {
    const list = document.getElementById('story-list');
    if (!list || !list.querySelector('.story')) return false;
    requestAnimationFrame(() => { window.__firstStoriesDrawn = performance.now(); });
    return true;
  };
  const observer = new MutationObserver(() => { if (seen()) observer.disconnect(); });
  observer.observe(document, { childList: true, subtree: true });
})();
"#;

/// `/usr/bin/NAME` or the first NAME on the PATH.
fn program(names: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::iter::once(PathBuf::from("/usr/bin"))
        .chain(std::env::split_paths(&path))
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{names:?} not found: `apt-get install -y chromium chromium-driver`")
        })
}

/// A headless Chromium session; ended, with chromedriver, on drop.
struct Browser {
    agent: ureq::Agent,
    driver: Child,
    url: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open() -> Browser {
        let chromium = program(&["chromium", "chromium-browser"]);
        let chromedriver = program(&["chromedriver"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut browser = Browser {
            agent: support::agent(),
            driver,
            url: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !browser.driver_ready() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-extensions",
            "--no-proxy-server",
            "--window-size=1280,800",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        )])
        .collect::<Vec<_>>();
        let body = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let created: Value = browser
            .agent
            .post(format!("{}/session", browser.url))
            .send_json(&body)
            .expect("chromedriver answers")
            .into_body()
            .read_json()
            .expect("session JSON");
        browser.session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no Chromium session: {created}"))
            .to_string();
        browser
    }

    fn driver_ready(&self) -> bool {
        self.agent
            .get(format!("{}/status", self.url))
            .call()
            .ok()
            .and_then(|r| r.into_body().read_json::<Value>().ok())
            .is_some_and(|v| v["value"]["ready"] == true)
    }

    fn command(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.url, self.session);
        let value: Value = self
            .agent
            .post(&url)
            .send_json(&body)
            .expect("webdriver answers")
            .into_body()
            .read_json()
            .expect("webdriver JSON");
        value["value"].clone()
    }

    fn js(&self, script: &str) -> Value {
        self.command("/execute/sync", json!({"script": script, "args": []}))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(format!("{}/session/{}", self.url, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One load of the page, in milliseconds from navigation start.
struct Load {
    /// The first stories drawn.
    drawn: f64,
    /// The stories' API answer received.
    answered: f64,
    /// The page's scripts run (`DOMContentLoaded` done).
    scripts: f64,
    /// The URL the page asked the stories with.
    asked: String,
}

fn load(browser: &Browser, page: &str) -> Load {
    // A blank page between loads, so each is a navigation of its own.
    browser.command("/url", json!({"url": "about:blank"}));
    browser.command("/url", json!({"url": page}));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = browser.js(
            "return window.__firstStoriesDrawn === undefined ? null : [window.__firstStoriesDrawn,
               performance.getEntriesByType('resource').map(e => e.name)
                 .find(n => n.includes('/api/stories?')) || '',
               (performance.getEntriesByType('resource').find(e => e.name.includes('/api/stories?')) || {}).responseEnd || 0,
               performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd];",
        );
        if let Some(drawn) = found[0].as_f64() {
            return Load {
                drawn,
                asked: found[1].as_str().unwrap_or_default().to_string(),
                answered: found[2].as_f64().unwrap_or(0.0),
                scripts: found[3].as_f64().unwrap_or(0.0),
            };
        }
        assert!(Instant::now() < deadline, "no story drawn within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The loads of the page on a database of `stories` stories.
fn measure(stories: usize, loads: usize) -> Vec<Load> {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("stories.db");
    data::generate(
        &db,
        data::Shape {
            stories,
            runs: stories,
            orphaned_stories: 0,
            active: false,
        },
    )
    .expect("generate the database");
    let server = Server::start(&db, &["--workers", "0"]);
    let browser = Browser::open();
    browser.command(
        "/goog/cdp/execute",
        json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": FIRST_ROWS_PROBE}}),
    );
    let page = server.url("/");
    let measured = (0..loads).map(|_| load(&browser, &page)).collect();
    let cards = browser.js("return document.querySelectorAll('#story-list .story').length;");
    println!("{stories} stories: {cards} story cards on the page");
    measured
}

fn median_of(loads: &[Load], figure: impl Fn(&Load) -> f64) -> f64 {
    percentile(&loads.iter().map(figure).collect::<Vec<_>>(), 50.0)
}

fn main() {
    let stories = support::env_number("STORIES_PAGE_BENCH_STORIES", 10_000);
    let loads = support::env_number("STORIES_PAGE_BENCH_LOADS", 20).max(1);
    let many = measure(stories, loads);
    // The same page with one story, at the same time on the same machine:
    // what the page costs whatever the library's size.
    let one = measure(1, loads);
    let drawn: Vec<f64> = many.iter().map(|l| l.drawn).collect();
    let median = percentile(&drawn, 50.0);
    let p95 = percentile(&drawn, 95.0);
    let asked = &many[many.len() - 1].asked;
    let limit = asked
        .split("limit=")
        .nth(1)
        .map(|rest| rest.split('&').next().unwrap_or(rest).to_string())
        .unwrap_or_else(|| "none: all".into());
    print_table(
        &format!(
            "stories page: {loads} loads of / with {stories} stories, headless Chromium 1280x800, {} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        &[
            Row::new(
                "first screen of stories, median ms",
                format!("{median:.1}"),
                "< 300 ms",
                Some(median < 300.0),
            ),
            Row::new(
                "first screen of stories, p95 ms",
                format!("{p95:.1}"),
                "< 300 ms",
                Some(p95 < 300.0),
            ),
            Row::new(
                "first load (cold browser cache) ms",
                format!("{:.1}", drawn[0]),
                "",
                None,
            ),
            Row::new(
                "  median ms to DOMContentLoaded",
                format!("{:.1}", median_of(&many, |l| l.scripts)),
                "",
                None,
            ),
            Row::new(
                "  median ms to the stories' API answer",
                format!("{:.1}", median_of(&many, |l| l.answered)),
                "",
                None,
            ),
            Row::new(
                "same page, 1 story: first screen median ms",
                format!("{:.1}", median_of(&one, |l| l.drawn)),
                "(reference)",
                None,
            ),
            Row::new(
                "same page, 1 story: DOMContentLoaded ms",
                format!("{:.1}", median_of(&one, |l| l.scripts)),
                "(reference)",
                None,
            ),
            Row::new("stories asked per page (?limit=)", limit, "a page", None),
        ],
    );
}
