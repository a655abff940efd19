//! Backups: rotated, consistent copies of the database.
//!
//! A copy is written with `VACUUM INTO` (consistent while the server writes)
//! to a `.partial` name first and renamed when whole, so a copy cut short by a
//! full disk never looks like a backup. `serve` writes one every
//! `--backup-interval-h` on a thread of its own; every destructive repair
//! (`health-check --fix`, `fix-orphans`, a purge) writes one first. The
//! directory keeps the newest `--backup-keep` copies.
//!
//! A failing backup (disk full, directory not writable) is reported — in the
//! log, in `GET /api/backups` and on the page — and never stops serving.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::run::Timestamp;
use crate::store::Store;

/// Backup file names: `storyflow-<UTC time>-<reason>.db`, so that names sort
/// by time and say why the copy was taken.
const PREFIX: &str = "storyflow-";
const SUFFIX: &str = ".db";

/// Why a backup was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupReason {
    /// The timer's regular copy.
    Scheduled,
    /// Before `health-check --fix` or the health check's fix over HTTP.
    HealthFix,
    /// Before `fix-orphans`.
    FixOrphans,
    /// Before a story is purged from the trash.
    Purge,
}

impl BackupReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupReason::Scheduled => "scheduled",
            BackupReason::HealthFix => "health-fix",
            BackupReason::FixOrphans => "fix-orphans",
            BackupReason::Purge => "purge",
        }
    }
}

/// Where backups go and how many are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupPolicy {
    pub dir: PathBuf,
    /// `None`: no timer backups (`--backup-interval-h 0`).
    pub interval: Option<Duration>,
    pub keep: usize,
}

impl BackupPolicy {
    pub const DEFAULT_INTERVAL_HOURS: f64 = 24.0;
    pub const DEFAULT_KEEP: usize = 7;

    /// `<database file name>.backups` beside the database.
    pub fn default_dir(database: &Path) -> PathBuf {
        let name = database
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "storyflow.db".into());
        database.with_file_name(format!("{name}.backups"))
    }
}

/// One backup file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupFile {
    pub path: String,
    pub name: String,
    pub size_bytes: u64,
    pub created_at: String,
}

/// How the backups are doing, for `/api/backups`, `/api/health` and the page.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BackupStatus {
    pub enabled: bool,
    pub dir: String,
    pub interval_h: Option<f64>,
    pub keep: usize,
    pub last_backup_at: Option<String>,
    /// The last attempt's failure, cleared by the next success.
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

/// Writes a backup now and rotates the directory. Returns the new file.
pub fn write_backup(
    store: &Store,
    policy: &BackupPolicy,
    reason: BackupReason,
) -> Result<BackupFile> {
    std::fs::create_dir_all(&policy.dir).map_err(|e| unwritable(&policy.dir, &e))?;
    let now = store.clock().now();
    let stamp = file_stamp(now);
    let name = format!("{PREFIX}{stamp}-{}{SUFFIX}", reason.as_str());
    let path = policy.dir.join(&name);
    // Two copies for one reason in one millisecond (a manual clock): the
    // newer replaces the older, as a rename would.
    let _ = std::fs::remove_file(&path);
    store.backup(&path)?;
    rotate(&policy.dir, policy.keep.max(1))?;
    let size_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    log::info!(
        "backup written: {} ({size_bytes} bytes, {})",
        path.display(),
        reason.as_str()
    );
    Ok(BackupFile {
        path: path.display().to_string(),
        name,
        size_bytes,
        created_at: Timestamp::at(now).to_string(),
    })
}

/// The backups in `dir`, newest first. A missing directory has none.
pub fn list_backups(dir: &Path) -> Result<Vec<BackupFile>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(unwritable(dir, &e)),
    };
    let mut files: Vec<BackupFile> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_string();
            let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
            let created_at = parse_stamp(stamp.get(..19)?)?;
            let size_bytes = entry.metadata().ok()?.len();
            Some(BackupFile {
                path: entry.path().display().to_string(),
                name,
                size_bytes,
                created_at,
            })
        })
        .collect();
    files.sort_by(|a, b| b.name.cmp(&a.name));
    Ok(files)
}

/// Removes all but the newest `keep` backups.
fn rotate(dir: &Path, keep: usize) -> Result<()> {
    for old in list_backups(dir)?.into_iter().skip(keep) {
        if let Err(e) = std::fs::remove_file(&old.path) {
            log::warn!("could not remove the old backup {}: {e}", old.path);
        }
    }
    Ok(())
}

/// `20261201T103501Z`: sortable, and valid in every file system's names.
fn file_stamp(at: SystemTime) -> String {
    let text = Timestamp::at(at).to_string(); // 2026-12-01T10:35:01.123Z
    let digits: String = text
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{digits}{}Z", &text.get(20..23).unwrap_or("000"))
}

/// The file stamp's first 15 characters (`20261201T103501`) as a timestamp.
fn parse_stamp(stamp: &str) -> Option<String> {
    let digits = stamp.get(..15)?;
    if !digits
        .chars()
        .enumerate()
        .all(|(i, c)| if i == 8 { c == 'T' } else { c.is_ascii_digit() })
    {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &digits[0..4],
        &digits[4..6],
        &digits[6..8],
        &digits[9..11],
        &digits[11..13],
        &digits[13..15]
    ))
}

fn unwritable(dir: &Path, err: &std::io::Error) -> Error {
    if err.raw_os_error() == Some(28) {
        return Error::DatabaseFull;
    }
    Error::BackupFailed(format!(
        "the backup directory {} cannot be written ({err}); choose another with --backup-dir",
        dir.display()
    ))
}

/// The timer's state, shared with the HTTP layer.
#[derive(Debug, Default)]
pub struct Backups {
    status: Mutex<BackupStatus>,
}

impl Backups {
    pub fn new(policy: &BackupPolicy) -> Backups {
        Backups {
            status: Mutex::new(BackupStatus {
                enabled: policy.interval.is_some(),
                dir: policy.dir.display().to_string(),
                interval_h: policy.interval.map(|i| i.as_secs_f64() / 3600.0),
                keep: policy.keep,
                ..Default::default()
            }),
        }
    }

    pub fn status(&self) -> BackupStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Writes a backup and records how it went; never fails the caller.
    pub fn run(
        &self,
        store: &Store,
        policy: &BackupPolicy,
        reason: BackupReason,
    ) -> Result<BackupFile> {
        let result = write_backup(store, policy, reason);
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        match &result {
            Ok(file) => {
                status.last_backup_at = Some(file.created_at.clone());
                status.last_error = None;
                status.last_error_at = None;
            }
            Err(e) => {
                log::warn!("backup failed: {e}; serving goes on");
                status.last_error = Some(e.to_string());
                status.last_error_at = Some(store.now().to_string());
            }
        }
        result
    }

    /// Whether the timer's next backup is due: none yet in the directory, or
    /// the newest is older than the interval.
    pub fn due(&self, store: &Store, policy: &BackupPolicy) -> bool {
        let Some(interval) = policy.interval else {
            return false;
        };
        let newest = self.status().last_backup_at.or_else(|| {
            list_backups(&policy.dir)
                .ok()
                .and_then(|files| files.first().map(|f| f.created_at.clone()))
        });
        match newest.and_then(|at| humantime::parse_rfc3339_weak(&at).ok()) {
            Some(at) => store
                .clock()
                .now()
                .duration_since(at)
                .is_ok_and(|age| age >= interval),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewStory;

    fn store_in(dir: &Path) -> Store {
        let store = Store::open(&dir.join("book.db"), 2).unwrap();
        store
            .create_story(&NewStory {
                title: "Backed up".into(),
                ..Default::default()
            })
            .unwrap();
        store
    }

    #[test]
    fn copies_rotate_to_keep_and_each_is_a_whole_database() {
        let dir = tempfile::tempdir().unwrap();
        let clock = std::sync::Arc::new(crate::clock::ManualClock::new(SystemTime::UNIX_EPOCH));
        let store = store_in(dir.path()).with_clock(clock.clone());
        let policy = BackupPolicy {
            dir: BackupPolicy::default_dir(store.path()),
            interval: Some(Duration::from_secs(60)),
            keep: 3,
        };
        assert_eq!(policy.dir, dir.path().join("book.db.backups"));
        let backups = Backups::new(&policy);
        assert!(backups.due(&store, &policy));
        for _ in 0..5 {
            backups
                .run(&store, &policy, BackupReason::Scheduled)
                .unwrap();
            assert!(!backups.due(&store, &policy));
            clock.advance(Duration::from_secs(61));
            assert!(backups.due(&store, &policy));
        }
        let files = list_backups(&policy.dir).unwrap();
        assert_eq!(files.len(), 3);
        assert!(files[0].name > files[1].name);
        assert_eq!(files[0].created_at, "1970-01-01T00:04:04Z");
        for file in files {
            let copy = rusqlite::Connection::open(&file.path).unwrap();
            let check: String = copy
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok");
            let stories: i64 = copy
                .query_row("SELECT count(*) FROM stories", [], |r| r.get(0))
                .unwrap();
            assert_eq!(stories, 1);
        }
        assert_eq!(backups.status().last_error, None);
    }

    #[test]
    fn an_unwritable_directory_is_a_clear_error_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "a file where the directory should be").unwrap();
        let policy = BackupPolicy {
            dir: blocker.join("backups"),
            interval: Some(Duration::from_secs(60)),
            keep: 2,
        };
        let backups = Backups::new(&policy);
        let err = backups
            .run(&store, &policy, BackupReason::Scheduled)
            .unwrap_err();
        assert!(err.to_string().contains("cannot be written"), "{err}");
        assert!(backups.status().last_error.is_some());
        assert!(!policy.dir.exists());
    }
}
