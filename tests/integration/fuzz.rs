//! Property tests over hostile input, run by `cargo test` like every other
//! test: the outline parser on any text, and the request path (the edge
//! checks, routing, id parsing, query parsing, JSON body decoding, the
//! handlers) on arbitrary methods, paths, query strings, headers and bodies,
//! in-process against a real `App` on a temporary database.
//!
//! The properties: no panic, and no request answered with a 5xx. Case counts
//! are set for a CI run of a few seconds; `STORYFLOW_FUZZ_CASES=N` multiplies
//! them by N for a longer hunt. Each test prints how many inputs it ran.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use storyflow::http::{EdgePolicy, ROUTES, Reply, Req, dispatch};
use storyflow::progress::{check_outline, parse_outline};

use crate::util::{Api, IN_PROCESS_PORT as PORT, InProcess, create_story, id_of};

const TOKEN: &str = "fuzz-token";

fn scale() -> u32 {
    std::env::var("STORYFLOW_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases * scale(),
        failure_persistence: None,
        ..Config::default()
    })
}

// ------------------------------------------------------------------ outline

/// Outline-shaped text: the three forms, their near misses, and noise.
fn outline_line() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        0u64..30,
        Just(u32::MAX as u64),
        Just(u32::MAX as u64 + 1),
        Just(100_000),
        Just(100_001),
        any::<u64>(),
    ];
    (
        number,
        "[ -~]{0,20}",
        prop::sample::select(vec![
            "## Chapter {n}: {t}",
            "Chapter {n} - {t}",
            "**Chapter {n}.** {t}",
            "# CHAPTER {n}",
            "{n}. {t}",
            "{n}) {t}",
            "   {n}. {t}",
            "Chapter{n} {t}",
            "Chapters {n}",
            "chapter  {n}:{t}",
            "> - Chapter {n} — {t}",
            "{t}",
            "",
        ]),
    )
        .prop_map(|(n, t, form)| form.replace("{n}", &n.to_string()).replace("{t}", &t))
}

fn outline_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Anything at all, control characters and all of Unicode included.
        any::<String>(),
        prop::collection::vec(outline_line(), 0..60).prop_map(|lines| lines.join("\n")),
        prop::collection::vec(outline_line(), 0..60).prop_map(|lines| lines.join("\r\n")),
        prop::collection::vec(
            prop_oneof![outline_line(), "\\PC{0,40}", "[#*_> \t-]{0,10}[0-9]{0,12}"],
            0..40
        )
        .prop_map(|lines| lines.join("\n")),
    ]
}

fn check_outline_properties(text: &str, explicit: Option<u32>) -> Result<(), TestCaseError> {
    let lines = text.lines().count();
    let entries = parse_outline(text);
    prop_assert!(
        entries.len() <= lines,
        "{} chapters from {lines} lines",
        entries.len()
    );
    let mut numbers = std::collections::HashSet::new();
    for entry in &entries {
        prop_assert!(
            numbers.insert(entry.number),
            "chapter {} twice",
            entry.number
        );
        prop_assert!(
            entry.line >= 1 && entry.line <= lines,
            "line {}",
            entry.line
        );
        prop_assert!(entry.number <= 100_000, "chapter {}", entry.number);
    }
    let warnings = check_outline(text, explicit);
    prop_assert!(warnings.len() <= lines + 1, "{} warnings", warnings.len());
    Ok(())
}

#[test]
fn the_outline_parser_takes_any_text() {
    let mut runner = runner(3000);
    let inputs = Cell::new(0u64);
    runner
        .run(
            &(outline_text(), prop::option::of(any::<u32>())),
            |(text, explicit)| {
                inputs.set(inputs.get() + 1);
                check_outline_properties(&text, explicit)
            },
        )
        .unwrap();
    eprintln!("fuzz: the outline parser ran on {} inputs", inputs.get());
}

#[test]
fn an_outline_of_distinct_headings_yields_exactly_those_chapters() {
    let mut runner = runner(1000);
    let inputs = Cell::new(0u64);
    let numbers = prop::collection::vec(1u32..=100_000, 0..50);
    runner
        .run(&(numbers, "[a-zA-Z ]{0,20}"), |(numbers, title)| {
            inputs.set(inputs.get() + 1);
            let mut distinct = Vec::new();
            for n in numbers {
                if !distinct.contains(&n) {
                    distinct.push(n);
                }
            }
            let text: String = distinct
                .iter()
                .map(|n| format!("## Chapter {n}: {title}\nSome prose.\n1. a scene\n"))
                .collect();
            let found: Vec<u32> = parse_outline(&text).iter().map(|e| e.number).collect();
            prop_assert_eq!(found, distinct);
            Ok(())
        })
        .unwrap();
    eprintln!("fuzz: {} generated outlines parsed exactly", inputs.get());
}

/// One pass, no backtracking: a megabyte of the worst shapes parses in well
/// under a second even unoptimised (a quadratic scan would take hours).
#[test]
fn the_outline_parser_is_linear_on_adversarial_input() {
    let size = 1024 * 1024;
    let shapes = [
        "Chapter ".repeat(size / 8),
        "Chapter 1".repeat(size / 9),
        "#".repeat(size),
        "9".repeat(size),
        "1.".repeat(size / 2),
        "Chapter 1: x\n".repeat(size / 13),
        "1. x\n".repeat(size / 5),
        "\n".repeat(size),
        format!("Chapter {}", "9".repeat(size)),
    ];
    for shape in &shapes {
        let started = Instant::now();
        let _ = parse_outline(shape);
        let _ = check_outline(shape, Some(3));
        let elapsed = started.elapsed();
        // A bound for blow-ups, not a benchmark: one linear pass over 1 MiB
        // takes about 2 s in a debug build on a loaded 2-core machine; a
        // quadratic one would take hours. A tight bound only measured the
        // machine's load (it failed at 5 s with other builds running).
        assert!(
            elapsed < Duration::from_secs(60),
            "{elapsed:?} for {:?}…",
            &shape[..20]
        );
    }
}

// ------------------------------------------------------------- the request

/// A real `App` on a temporary database, with stories and runs to aim at.
struct Target {
    api: InProcess,
    story_ids: Vec<String>,
    run_ids: Vec<String>,
}

fn request(method: &str, url: &str, body: Option<Value>) -> Req {
    let mut headers = vec![("host".to_string(), format!("127.0.0.1:{PORT}"))];
    if body.is_some() {
        headers.push(("content-type".to_string(), "application/json".to_string()));
    }
    let mut req = Req::from_parts(method, url, headers, "seed");
    req.body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    req
}

fn target() -> Target {
    let api = InProcess::new();
    let mut story_ids = Vec::new();
    let mut run_ids = Vec::new();
    for i in 0..6 {
        let body =
            json!({"title": format!("Seed {i}"), "outline": "## Chapter 1: A\n## Chapter 2: B\n"});
        let id = id_of(&create_story(&api, body));
        if i % 2 == 0 {
            run_ids.push(id_of(&api.start_run(&id, None)));
        }
        story_ids.push(id);
    }
    Target {
        api,
        story_ids,
        run_ids,
    }
}

/// What goes where a route has `{id}`.
#[derive(Debug, Clone)]
enum Id {
    Story(usize),
    Run(usize),
    RandomUuid(u128),
    Text(String),
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        3 => any::<usize>().prop_map(Id::Story),
        3 => any::<usize>().prop_map(Id::Run),
        1 => any::<u128>().prop_map(Id::RandomUuid),
        1 => prop_oneof![
            "[0-9a-fA-F-]{0,40}",
            "[ -~]{0,50}",
            "%[0-9A-F]{2}[a-z%./]{0,20}",
            "\\PC{0,20}",
        ]
        .prop_map(Id::Text),
    ]
}

fn resolve(id: &Id, target: &Target) -> String {
    match id {
        Id::Story(i) => target.story_ids[i % target.story_ids.len()].clone(),
        Id::Run(i) => target.run_ids[i % target.run_ids.len()].clone(),
        Id::RandomUuid(n) => uuid::Uuid::from_u128(*n).hyphenated().to_string(),
        Id::Text(text) => text.replace(['/', '?', '#'], "_"),
    }
}

#[derive(Debug, Clone)]
enum PathShape {
    /// A route of `ROUTES`, its `{id}` and `{number}` filled in.
    Route(usize, Id, String),
    Text(String),
}

/// What goes where a route has `{number}` (a chapter number).
fn number_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0u32..4).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => "[ -~]{0,12}".prop_map(|s| s.replace(['/', '?', '#'], "_")),
    ]
}

fn body_routes() -> Vec<usize> {
    (0..ROUTES.len())
        .filter(|&i| matches!(ROUTES[i].0, "POST" | "PATCH"))
        .collect()
}

fn path() -> impl Strategy<Value = PathShape> {
    prop_oneof![
        5 => (any::<usize>(), id(), number_segment())
            .prop_map(|(route, id, number)| PathShape::Route(route, id, number)),
        // Routes that take a body, more often: their decoding is the most
        // exposed code.
        3 => (prop::sample::select(body_routes()), id(), number_segment())
            .prop_map(|(route, id, number)| PathShape::Route(route, id, number)),
        1 => prop_oneof![
            "/api(/[a-z{}.%-]{0,12}){0,5}/?",
            "/[ -~]{0,80}",
            "[ -~]{0,40}",
            "/assets/[ -~]{0,30}",
            "/\\PC{0,30}",
        ]
        .prop_map(PathShape::Text),
    ]
}

/// `None`: the route's own method.
fn method() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        8 => Just(None),
        2 => prop::sample::select(vec!["GET", "POST", "PATCH", "DELETE"])
            .prop_map(|m| Some(m.to_string())),
        1 => prop::sample::select(vec!["PUT", "HEAD", "OPTIONS", "TRACE", "get", "Post"])
            .prop_map(|m| Some(m.to_string())),
        1 => "[A-Za-z-]{0,12}".prop_map(Some),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "limit", "offset", "status", "story_id", "fix", "full", "dry_run"
        ])
        .prop_map(String::from),
        "[a-z_]{1,8}",
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "",
            "0",
            "1",
            "50",
            "500",
            "501",
            "100000",
            "-1",
            "4294967295",
            "4294967296",
            "99999999999999999999",
            "1e3",
            "true",
            "false",
            "yes",
            "maybe",
            "pending",
            "running",
            "failed",
            "completed",
            "cancelled",
            "%FF",
            "%00",
            "null",
        ])
        .prop_map(String::from),
        "[ -~]{0,20}",
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
    ];
    prop_oneof![
        4 => prop::collection::vec((key, value), 0..4).prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        }),
        1 => "[ -~]{0,60}",
    ]
}

/// JSON values shaped like this API's bodies, and not.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            0i64, 1, 2, 3, 10, 200, 1000, 1001, -1, 4294967295, 4294967296
        ])
        .prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,40}".prop_map(Value::from),
        (0usize..3, any::<char>()).prop_map(|(k, c)| {
            // Strings at and around the field limits.
            let len = [500, 20_000, 200_000][k];
            Value::from(c.to_string().repeat(len + (k % 2)))
        }),
        outline_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            prop::sample::select(vec![
                "title",
                "premise",
                "outline",
                "chapter_count",
                "chapters_done",
                "step",
            ])
            .prop_map(String::from),
            "[a-z_]{0,10}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Body {
    None,
    /// The body that fits the route: a story, or a progress report.
    Fitting(Value, Value),
    Json(Value),
    Bytes(Vec<u8>),
}

fn text_field(max: usize) -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => "[ -~]{1,40}".prop_map(Value::from),
        1 => Just(Value::from("   ")),
        1 => (any::<char>(), 0..3usize)
            .prop_map(move |(c, d)| Value::from(c.to_string().repeat(max + d - 1))),
        1 => json_value(),
    ]
}

fn number_field() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (0u32..40).prop_map(Value::from),
        1 => prop::sample::select(vec![0i64, 1000, 1001, -1, 4294967295, 4294967296])
            .prop_map(Value::from),
        1 => Just(Value::Null),
        1 => json_value(),
    ]
}

fn object(fields: Vec<(&'static str, Option<Value>)>, extra: Option<(String, Value)>) -> Value {
    let mut object: serde_json::Map<String, Value> = fields
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key.to_string(), v)))
        .collect();
    if let Some((key, value)) = extra {
        object.insert(key, value);
    }
    Value::Object(object)
}

fn extra_field() -> impl Strategy<Value = Option<(String, Value)>> {
    prop::option::weighted(0.1, ("[a-z_]{1,10}", json_value()))
}

/// A story body (create or patch), plausible or not.
fn story_object() -> impl Strategy<Value = Value> {
    (
        prop::option::weighted(0.9, text_field(500)),
        prop::option::of(text_field(20_000)),
        prop::option::of(prop_oneof![
            3 => outline_text().prop_map(Value::from),
            1 => text_field(200_000),
        ]),
        prop::option::of(number_field()),
        extra_field(),
    )
        .prop_map(|(title, premise, outline, count, extra)| {
            object(
                vec![
                    ("title", title),
                    ("premise", premise),
                    ("outline", outline),
                    ("chapter_count", count),
                ],
                extra,
            )
        })
}

/// A progress report, plausible or not.
fn progress_object() -> impl Strategy<Value = Value> {
    (
        prop::option::weighted(0.9, number_field()),
        prop::option::of(text_field(200)),
        extra_field(),
    )
        .prop_map(|(done, step, extra)| {
            object(vec![("chapters_done", done), ("step", step)], extra)
        })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        2 => Just(Body::None),
        4 => (story_object(), progress_object()).prop_map(|(s, p)| Body::Fitting(s, p)),
        2 => json_value().prop_map(Body::Json),
        2 => prop::collection::vec(any::<u8>(), 0..512).prop_map(Body::Bytes),
        1 => "[ -~]{0,200}".prop_map(|s| Body::Bytes(s.into_bytes())),
    ]
}

/// Header values: right, wrong, missing.
fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let host = prop_oneof![
        6 => Just(Some(format!("127.0.0.1:{PORT}"))),
        1 => Just(Some(format!("localhost:{PORT}"))),
        1 => prop::sample::select(vec![
            "evil.com", "localhost.evil.com", "127.0.0.1:1", "[::1", "", "[::1]:7878",
        ])
        .prop_map(|h| Some(h.to_string())),
        1 => "[ -~]{0,30}".prop_map(Some),
        1 => Just(None),
    ];
    let origin = prop_oneof![
        6 => Just(None),
        1 => Just(Some(format!("http://127.0.0.1:{PORT}"))),
        1 => prop::sample::select(vec!["null", "https://evil.com", "http://127.0.0.1:7878.evil.com"])
            .prop_map(|o| Some(o.to_string())),
    ];
    let content_type = prop_oneof![
        6 => Just(Some("application/json".to_string())),
        1 => prop::sample::select(vec![
            "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
            "", "APPLICATION/JSON", "application/jsonx",
        ])
        .prop_map(|t| Some(t.to_string())),
        1 => "[ -~]{0,30}".prop_map(Some),
        2 => Just(None),
    ];
    let authorization = prop_oneof![
        3 => Just(None),
        4 => Just(Some(format!("Bearer {TOKEN}"))),
        1 => "[ -~]{0,30}".prop_map(Some),
    ];
    (host, origin, content_type, authorization).prop_map(|(host, origin, ct, auth)| {
        [
            ("host", host),
            ("origin", origin),
            ("content-type", ct),
            ("authorization", auth),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name.to_string(), v)))
        .collect()
    })
}

#[derive(Debug, Clone)]
struct Input {
    method: Option<String>,
    path: PathShape,
    query: String,
    headers: Vec<(String, String)>,
    body: Body,
    with_token: bool,
}

fn input() -> impl Strategy<Value = Input> {
    let with_token = prop::bool::weighted(0.25);
    (method(), path(), query(), headers(), body(), with_token).prop_map(
        |(method, path, query, headers, body, with_token)| Input {
            method,
            path,
            query,
            headers,
            body,
            with_token,
        },
    )
}

fn build(input: &Input, target: &Target) -> Req {
    let (route_method, pattern, path) = match &input.path {
        PathShape::Route(i, id, number) => {
            let (method, pattern) = ROUTES[i % ROUTES.len()];
            let path = pattern
                .replace("{id}", &resolve(id, target))
                .replace("{number}", number);
            (method, pattern, path)
        }
        PathShape::Text(text) => ("GET", "", text.clone()),
    };
    let method = input.method.as_deref().unwrap_or(route_method);
    let url = if input.query.is_empty() {
        path
    } else {
        format!("{path}?{}", input.query)
    };
    let mut req = Req::from_parts(method, &url, input.headers.clone(), "fuzz");
    req.body = match &input.body {
        Body::None => Vec::new(),
        Body::Fitting(_, progress) if pattern.ends_with("/progress") => {
            progress.to_string().into_bytes()
        }
        Body::Fitting(story, _) => story.to_string().into_bytes(),
        Body::Json(value) => value.to_string().into_bytes(),
        Body::Bytes(bytes) => bytes.clone(),
    };
    req
}

/// What every answer must be: below 500, in the contract's shape.
fn check_reply(req: &Req, reply: &Reply) -> Result<(), TestCaseError> {
    prop_assert!(
        (200..500).contains(&reply.status),
        "{} {} answered {}: {}",
        req.method,
        req.path,
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    if reply.content_type == "application/json" {
        let body: Value = serde_json::from_slice(&reply.body)
            .map_err(|e| TestCaseError::fail(format!("not JSON: {e}")))?;
        if reply.status >= 400 {
            prop_assert!(body["error"]["code"].is_string(), "{body}");
            prop_assert_eq!(
                body["error"]["status"].as_u64(),
                Some(u64::from(reply.status))
            );
            prop_assert!(body["error"]["message"].is_string(), "{}", body);
            prop_assert!(body["error"]["details"].is_object(), "{}", body);
        }
    }
    Ok(())
}

#[test]
fn the_request_path_never_panics_nor_answers_5xx() {
    let target = target();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let open = EdgePolicy::new(ip, None).with_port(PORT);
    let guarded = EdgePolicy::new(ip, Some(TOKEN.into())).with_port(PORT);
    let mut runner = runner(4000);
    let inputs = Cell::new(0u64);
    let dispatched = Cell::new(0u64);
    let by_status = RefCell::new(std::collections::BTreeMap::new());
    runner
        .run(&input(), |input| {
            inputs.set(inputs.get() + 1);
            let req = build(&input, &target);
            let policy = if input.with_token { &guarded } else { &open };
            let reply = match policy.check(&req) {
                Ok(()) => {
                    dispatched.set(dispatched.get() + 1);
                    dispatch(&req, &target.api.app)
                }
                Err(err) => {
                    prop_assert!(
                        matches!(err.status(), 400 | 401 | 403),
                        "the edge answered {}",
                        err.status()
                    );
                    Reply::error(&err, &req.id)
                }
            };
            *by_status.borrow_mut().entry(reply.status).or_insert(0u64) += 1;
            check_reply(&req, &reply)
        })
        .unwrap();
    let (inputs, dispatched, by_status) = (inputs.get(), dispatched.get(), by_status.into_inner());
    eprintln!(
        "fuzz: {inputs} requests, {dispatched} past the edge checks; answers by status: {by_status:?}"
    );
    // The generators reach the handlers, not only the error paths.
    for status in [200, 201, 400, 404, 415, 422] {
        assert!(
            by_status.get(&status).is_some_and(|n| *n > 0),
            "no {status} among {by_status:?}"
        );
    }
}

#[test]
fn random_bytes_on_every_route_never_panic_nor_answer_5xx() {
    let target = target();
    let mut runner = runner(1500);
    let inputs = Cell::new(0u64);
    let strategy = (
        any::<usize>(),
        id(),
        prop::sample::select(vec!["GET", "POST", "PATCH", "DELETE"]),
        prop::collection::vec(any::<u8>(), 0..4096),
    );
    runner
        .run(&strategy, |(route, id, method, bytes)| {
            inputs.set(inputs.get() + 1);
            let path = ROUTES[route % ROUTES.len()]
                .1
                .replace("{id}", &resolve(&id, &target))
                .replace("{number}", "1");
            let mut req = request(method, &path, None);
            req.headers
                .push(("content-type".into(), "application/json".into()));
            req.body = bytes;
            let reply = dispatch(&req, &target.api.app);
            check_reply(&req, &reply)
        })
        .unwrap();
    eprintln!("fuzz: {} random-byte bodies dispatched", inputs.get());
}
