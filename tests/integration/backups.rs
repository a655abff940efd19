//! Backups: the timer's rotated copies and the copy written before every
//! destructive repair, each a whole database the CLI can open.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;

use crate::util::{Api, Server, TempDb, cli, create_story, stdout};

fn integrity(path: &str) -> String {
    let conn = Connection::open(path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn the_timer_writes_rotated_whole_copies_the_cli_can_open() {
    let temp = TempDb::new();
    // 0.0003 h is about a second: with a sweep every second, a copy a second.
    let server = Server::start_on(
        &temp.path,
        &[
            "--backup-interval-h",
            "0.0003",
            "--backup-keep",
            "2",
            "--sweep-interval-s",
            "1",
        ],
    );
    create_story(&server, json!({ "title": "Kept Safe" }));
    let mut first_names = Vec::new();
    let rotated = server.wait_until(Duration::from_secs(30), || {
        let listed = server.get("/api/backups").json();
        let names: Vec<String> = listed["backups"]
            .as_array()
            .map(|files| {
                files
                    .iter()
                    .map(|f| f["name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if first_names.is_empty() && names.len() == 2 {
            first_names = names.clone();
        }
        // Rotated: still two, and the oldest of the first two is gone.
        names.len() == 2 && !first_names.is_empty() && !names.contains(&first_names[1])
    });
    assert!(
        rotated,
        "no rotation seen: {}",
        server.get("/api/backups").text()
    );
    let listed = server.get("/api/backups").json();
    assert_eq!(listed["status"]["enabled"], true);
    assert_eq!(listed["status"]["keep"], 2);
    assert!(listed["status"]["last_error"].is_null(), "{listed}");
    let files = listed["backups"].as_array().unwrap().clone();
    assert_eq!(files.len(), 2);
    let dir = Path::new(&temp.path).with_file_name(format!(
        "{}.backups",
        temp.path.file_name().unwrap().to_string_lossy()
    ));
    for file in files {
        let path = file["path"].as_str().unwrap();
        assert!(Path::new(path).starts_with(&dir), "{path} not in {dir:?}");
        assert_eq!(integrity(path), "ok");
        let listed = cli(Path::new(path), &["story", "list"]);
        assert!(listed.status.success(), "{listed:?}");
        assert!(stdout(&listed).contains("Kept Safe"), "{}", stdout(&listed));
    }
}

#[test]
fn fix_orphans_writes_a_backup_first_that_holds_the_rows_it_removes() {
    let temp = TempDb::new();
    let added = cli(&temp.path, &["story", "add", "Anchor"]);
    assert!(added.status.success(), "{added:?}");
    let orphan = "00000000-0000-4000-8000-0000000000aa";
    Connection::open(&temp.path)
        .unwrap()
        .execute_batch(&format!(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO workflow_runs (id, story_id, created_at, updated_at)
             VALUES ('{orphan}', '00000000-0000-4000-8000-0000000000bb',
                     '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');"
        ))
        .unwrap();
    let fixed = cli(&temp.path, &["fix-orphans"]);
    assert!(fixed.status.success(), "{fixed:?}");
    let text = stdout(&fixed);
    let backup = text
        .lines()
        .find_map(|l| l.strip_prefix("backup written first: "))
        .unwrap_or_else(|| panic!("no backup line in {text}"))
        .to_string();
    assert_eq!(integrity(&backup), "ok");
    let count = |db: &str| -> u32 {
        Connection::open(db)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM workflow_runs WHERE id = ?1",
                [orphan],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(count(&backup), 1, "the backup holds the pre-fix rows");
    assert_eq!(count(temp.path.to_str().unwrap()), 0, "the fix removed it");
    let json = cli(&temp.path, &["fix-orphans", "--dry-run", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert!(
        report.get("backup").is_none(),
        "a dry run writes no backup: {report}"
    );
}
