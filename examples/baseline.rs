//! The bare baselines `scripts/bench.sh` measures storyflow against, built
//! from the same crates and nothing else:
//!
//! - `baseline serve DB ADDR`: tiny_http answering `GET /runs/{id}` with one
//!   r2d2 + rusqlite point SELECT by primary key, as JSON, and
//!   `POST /runs/{id}/progress` with one UPDATE by primary key of the JSON
//!   body's `chapters_done` on one writer connection behind a mutex (the
//!   bare progress figure); any other path gets a fixed 200-byte JSON body
//!   (the bare server figure);
//! - `baseline update DB SECONDS`: single-row UPDATEs by primary key in WAL
//!   mode with synchronous=NORMAL, as fast as one connection goes;
//! - `baseline antijoin DB`: the bare anti-join that counts runs whose story
//!   is missing, timed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["serve", db, addr] => serve(db, addr),
        ["update", db, seconds] => update(db, seconds.parse().unwrap_or(5)),
        ["antijoin", db] => antijoin(db),
        _ => Err("usage: baseline serve DB ADDR | update DB SECONDS | antijoin DB".into()),
    };
    if let Err(e) = result {
        eprintln!("baseline: {e}");
        std::process::exit(1);
    }
}

type Failure = Box<dyn std::error::Error>;

fn serve(db: &str, addr: &str) -> Result<(), Failure> {
    let manager = SqliteConnectionManager::file(db)
        .with_init(|c| c.execute_batch("PRAGMA journal_mode = WAL;"));
    let pool = r2d2::Pool::builder()
        .max_size(8)
        .test_on_check_out(false)
        .build(manager)?;
    let writer = Arc::new(Mutex::new(Connection::open(db)?));
    writer
        .lock()
        .map_err(|_| "poisoned")?
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    let server = Arc::new(tiny_http::Server::http(addr).map_err(|e| e.to_string())?);
    let fixed = format!("{{\"status\":\"ok\",\"padding\":\"{}\"}}", "x".repeat(170));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (server, pool, writer, fixed) =
                (server.clone(), pool.clone(), writer.clone(), fixed.clone());
            std::thread::spawn(move || {
                while let Ok(mut request) = server.recv() {
                    let url = request.url().to_string();
                    let body = match url.strip_prefix("/runs/") {
                        Some(rest) => match rest.strip_suffix("/progress") {
                            Some(id) => progress(&writer, id, &mut request),
                            None => point_select(&pool, rest),
                        }
                        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
                        None => fixed.clone(),
                    };
                    let header = tiny_http::Header::from_bytes("Content-Type", "application/json")
                        .expect("static header");
                    let _ =
                        request.respond(tiny_http::Response::from_string(body).with_header(header));
                }
            })
        })
        .collect();
    eprintln!("baseline serving http://{addr}");
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

fn point_select(pool: &r2d2::Pool<SqliteConnectionManager>, id: &str) -> Result<String, Failure> {
    let conn = pool.get()?;
    let row = conn
        .prepare_cached("SELECT id, story_id, status, chapters_done, chapters_total, created_at FROM workflow_runs WHERE id = ?1")?
        .query_row([id], |row| {
            Ok(serde_json::json!({
                "id": row.get::<_, String>(0)?,
                "story_id": row.get::<_, String>(1)?,
                "status": row.get::<_, String>(2)?,
                "chapters_done": row.get::<_, i64>(3)?,
                "chapters_total": row.get::<_, i64>(4)?,
                "created_at": row.get::<_, String>(5)?,
            }))
        })
        .optional()?;
    Ok(row.map_or_else(
        || "{\"error\":\"not found\"}".to_string(),
        |v| v.to_string(),
    ))
}

fn progress(
    writer: &Mutex<Connection>,
    id: &str,
    request: &mut tiny_http::Request,
) -> Result<String, Failure> {
    #[derive(serde::Deserialize)]
    struct Report {
        chapters_done: i64,
    }
    let mut body = Vec::new();
    request.as_reader().read_to_end(&mut body)?;
    let report: Report = serde_json::from_slice(&body)?;
    let changed = writer
        .lock()
        .map_err(|_| "poisoned")?
        .prepare_cached("UPDATE workflow_runs SET chapters_done = ?2 WHERE id = ?1")?
        .execute(rusqlite::params![id, report.chapters_done])?;
    Ok(serde_json::json!({ "applied": changed == 1 }).to_string())
}

fn update(db: &str, seconds: u64) -> Result<(), Failure> {
    let conn = Connection::open(db)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM workflow_runs LIMIT 1000")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut stmt =
        conn.prepare("UPDATE workflow_runs SET chapters_done = chapters_done + 1 WHERE id = ?1")?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut done = 0u64;
    while Instant::now() < deadline {
        stmt.execute([&ids[done as usize % ids.len()]])?;
        done += 1;
    }
    println!("{:.0}", done as f64 / started.elapsed().as_secs_f64());
    Ok(())
}

fn antijoin(db: &str) -> Result<(), Failure> {
    let conn = Connection::open(db)?;
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let _: i64 = conn.query_row(
            "SELECT count(*) FROM workflow_runs r WHERE NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = r.story_id)",
            [],
            |r| r.get(0),
        )?;
        best = best.min(started.elapsed());
    }
    println!("{:.1}", best.as_secs_f64() * 1e3);
    Ok(())
}
