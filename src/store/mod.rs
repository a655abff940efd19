//! All SQL of storyflow lives here, behind [`Store`].
//!
//! The store owns the database file: opening it (WAL, foreign keys, busy
//! timeout), migrating it from the numbered files in `schema/`, and every
//! statement that reads or writes it. Other modules speak in typed rows and
//! ids, never in SQL.
//!
//! Invariants kept here:
//! - every write that touches more than one row runs in one transaction that
//!   begins `IMMEDIATE`, so it never fails half-way on a lock upgrade and never
//!   commits anything partial;
//! - a run can only be inserted for a story that exists (foreign key, checked
//!   in the same transaction), so the API cannot create an orphan;
//! - at most one active run per story (a partial unique index);
//! - every statement is parameterised and prepared through the statement cache.

mod bible;
mod generations;
mod import;
mod maintenance;
mod migrate;
mod model;
mod runs;
mod search;
pub mod settings;
mod stories;
mod trash;
mod version_quality;
mod versions;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use crate::run::{BibleEntryId, InvalidId, RunId, RunStatus, StoryId};
pub use bible::{
    BibleEntry, BibleKind, BiblePatch, MAX_BIBLE_ALIASES, MAX_BIBLE_DESCRIPTION_CHARS,
    MAX_BIBLE_ENTRIES, MAX_BIBLE_NAME_CHARS, NewBibleEntry,
};
pub use generations::{Generation, GenerationKind, NewGeneration, Prices, Usage};
pub use import::ImportedChapter;
pub use maintenance::*;
pub use migrate::SCHEMA_VERSION;
pub use model::*;
pub use runs::{
    ChapterSave, RunFilter, RunOutcome, RunScope, SkipReason, explain_skipped_progress,
    write_progress,
};
pub use search::{HitKind, MAX_SEARCH_HITS, SearchHit};
pub use settings::StoredSettings;
pub use stories::{ChapterEdit, NewStory, StoryPatch};
pub use trash::{Purged, StoryPlace, TrashedStory};
pub use versions::{ChapterSource, ChapterVersion, RollBack, VersionInfo};

use crate::clock::{Clock, SystemClock, timestamp};
use crate::error::{Error, Result};
use crate::run::Timestamp;

/// How long a statement waits for another writer before giving up with
/// `DATABASE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The oldest bundled SQLite we accept: 3.51.3 fixes a WAL-reset corruption
/// that two connections writing or checkpointing at once could trigger.
const MIN_SQLITE_VERSION: i32 = 3_051_003;

pub type Conn = PooledConnection<SqliteConnectionManager>;

#[derive(Clone)]
pub struct Store {
    pool: Pool<SqliteConnectionManager>,
    path: PathBuf,
    clock: Arc<dyn Clock>,
    /// The one connection this process writes through; writers take turns
    /// on its mutex. SQLite admits one writer at a time anyway: queueing on a
    /// mutex instead of on SQLite's busy handler (which sleeps in growing
    /// steps) keeps concurrent writes from stalling each other, and one
    /// connection keeps its page cache valid from one write to the next
    /// (a pool hands writes to connections whose caches another connection's
    /// write just made stale). Other processes still meet the busy timeout.
    writer: Arc<Mutex<Connection>>,
    disk_full: Arc<DiskFull>,
    /// The stock phrases a chapter version is measured against when saved.
    stock_phrases: Arc<crate::quality::StockPhrases>,
}

/// Whether this process's writes are failing for want of disk space: set by
/// a write that fails with `SQLITE_FULL`, cleared by the next one that
/// succeeds. Reads keep working meanwhile; `/api/health` reports it.
#[derive(Debug, Default)]
struct DiskFull {
    /// Checked on every successful write; the lock is only taken on a change.
    flagged: AtomicBool,
    since: Mutex<Option<Timestamp>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    /// `max_connections` bounds the pool; the server sizes it to its threads.
    pub fn open(path: &Path, max_connections: u32) -> Result<Store> {
        let unusable = |reason: String| Error::DatabaseUnusable {
            path: path.display().to_string(),
            reason,
        };
        if rusqlite::version_number() < MIN_SQLITE_VERSION {
            return Err(unusable(format!(
                "SQLite {} is older than 3.51.3, which fixes a WAL corruption bug; rebuild storyflow",
                rusqlite::version()
            )));
        }
        if path.is_dir() {
            return Err(unusable("it is a directory, not a database file".into()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // The pool retries a failing open until its connection timeout, so a
        // path that is not a usable database would hang for 10 s: open,
        // configure and migrate one connection directly first, failing at once.
        // That connection stays: it is the writer.
        let writer = {
            let mut conn = Connection::open_with_flags(path, flags)
                .map_err(|e| unusable(describe_open_error(&e.to_string())))?;
            configure_connection(&mut conn)
                .map_err(|e| unusable(describe_open_error(&e.to_string())))?;
            migrate::migrate(&mut conn).map_err(|e| match e {
                Error::DatabaseUnusable { reason, .. } => unusable(reason),
                Error::Internal(reason) => unusable(describe_open_error(&reason)),
                other => other,
            })?;
            conn
        };
        let manager = SqliteConnectionManager::file(path)
            .with_flags(flags)
            .with_init(configure_connection);
        let pool = Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(Some(1))
            // A local file connection does not go stale; r2d2_sqlite's check
            // is a `SELECT 1` that would double the cost of a progress update.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(manager)
            .map_err(|e| unusable(describe_open_error(&e.to_string())))?;
        Ok(Store {
            pool,
            path: path.to_path_buf(),
            clock: Arc::new(SystemClock),
            writer: Arc::new(Mutex::new(writer)),
            disk_full: Arc::default(),
            stock_phrases: Arc::new(crate::quality::StockPhrases::shared().clone()),
        })
    }

    /// Replaces the stock phrase list chapter versions are measured against
    /// when saved (`serve --prompts DIR` with a `stock_phrases.txt`).
    pub fn with_stock_phrases(mut self, list: Arc<crate::quality::StockPhrases>) -> Store {
        self.stock_phrases = list;
        self
    }

    /// Replaces the clock that stamps rows and judges leases (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Store {
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Now, as the database writes it.
    pub fn now(&self) -> Timestamp {
        timestamp(self.clock.now())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection for reads, or for a single-statement write.
    pub fn conn(&self) -> Result<Conn> {
        Ok(self.pool.get()?)
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction, committed only when
    /// `work` succeeds.
    ///
    /// A transaction that fails for want of disk space is rolled back whole
    /// by SQLite (`DATABASE_FULL`): trying it again later saves all of it.
    pub fn write<T>(&self, work: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.writer();
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = work(&tx)?;
            tx.commit()?;
            Ok(out)
        })();
        self.note_disk_space(&result);
        result
    }

    /// Runs `work`, a single-statement write (its own implicit
    /// transaction), on the writer connection.
    pub fn write_one<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.writer();
        let result = work(&conn);
        self.note_disk_space(&result);
        result
    }

    /// Since when writes have been failing because the disk is full (as the
    /// database writes time), or `None` while they succeed.
    pub fn disk_full_since(&self) -> Option<Timestamp> {
        if !self.disk_full.flagged.load(Ordering::Relaxed) {
            return None;
        }
        self.disk_full
            .since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Called with the writer lock held, so changes do not race.
    fn note_disk_space<T>(&self, result: &Result<T>) {
        let full = match result {
            Ok(_) => false,
            Err(Error::DatabaseFull) => true,
            // Other failures say nothing about the disk.
            Err(_) => return,
        };
        if self.disk_full.flagged.load(Ordering::Relaxed) == full {
            return;
        }
        let mut since = self
            .disk_full
            .since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if full {
            log::warn!("the disk is full: writes fail and nothing partial is saved; reads go on");
            *since = Some(self.now());
        } else {
            log::info!("writes succeed again: the disk has space");
            *since = None;
        }
        self.disk_full.flagged.store(full, Ordering::Relaxed);
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while writing drops its transaction (rolled back) before
        // the lock is released, so a poisoned connection is still usable.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A consistent online copy of the database at `target` (`VACUUM INTO`),
    /// safe while the server writes, without the API key of the settings.
    /// Refuses to overwrite an existing file. The copy is written and
    /// scrubbed under `<target>.partial` and only then given its name, so
    /// a file at `target` is always whole and never holds the key, even for
    /// a moment, and a copy cut short (a full disk) never looks like one.
    pub fn backup(&self, target: &Path) -> Result<()> {
        if target.exists() {
            return Err(Error::validation(
                "path",
                format!(
                    "{} already exists; choose a new file name",
                    target.display()
                ),
            ));
        }
        if target.to_str().is_none() {
            return Err(Error::validation(
                "path",
                "the backup path must be valid UTF-8",
            ));
        }
        let mut partial = target.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let _ = std::fs::remove_file(&partial);
        let written = self.write_copy(&partial).and_then(|()| {
            // A hard link, not a rename: it never replaces a file that
            // appeared at `target` meanwhile.
            std::fs::hard_link(&partial, target).map_err(|e| {
                Error::BackupFailed(format!("cannot name the copy {}: {e}", target.display()))
            })
        });
        let _ = std::fs::remove_file(&partial);
        written
    }

    /// `VACUUM INTO` `path`, then the copy scrubbed of the model server's
    /// API key: a copy that cannot be scrubbed is not kept.
    fn write_copy(&self, path: &Path) -> Result<()> {
        let name = path.to_str().unwrap_or_default();
        self.conn()?.execute("VACUUM INTO ?1", [name])?;
        settings::scrub_copy(path)
    }

    /// Up to `limit` story ids (trashed ones too) that start with `prefix`,
    /// which must be lowercase hex digits and hyphens: every such id lies
    /// between the prefix and the prefix followed by `g` (past `f`), so the
    /// primary key answers.
    pub fn story_ids_with_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<StoryId>> {
        self.ids_with_prefix(
            "SELECT id FROM stories WHERE id >= ?1 AND id < ?1 || 'g' ORDER BY id LIMIT ?2",
            prefix,
            limit,
        )
    }

    /// The same for runs.
    pub fn run_ids_with_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<RunId>> {
        self.ids_with_prefix(
            "SELECT id FROM workflow_runs WHERE id >= ?1 AND id < ?1 || 'g' ORDER BY id LIMIT ?2",
            prefix,
            limit,
        )
    }

    fn ids_with_prefix<T: rusqlite::types::FromSql>(
        &self,
        sql: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<T>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(rusqlite::params![prefix, limit], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Size of the database file in bytes (pages × page size).
    pub fn size_bytes(&self) -> Result<u64> {
        let conn = self.conn()?;
        let size: i64 = conn
            .prepare_cached(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            )?
            .query_row([], |row| row.get(0))?;
        Ok(size.max(0) as u64)
    }
}

fn configure_connection(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.trace_v2(
        rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT,
        Some(count_statement),
    );
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    // `journal_mode` answers with a row, so it is queried rather than executed.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!(
            "the database could not switch to WAL (journal_mode is {mode}); concurrent access will be slower"
        );
    }
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
    Ok(())
}

fn count_statement(event: rusqlite::trace::TraceEvent<'_>) {
    // Statements run by triggers are reported with a leading "--"; they are
    // part of the statement that fired them, not statements of their own.
    if let rusqlite::trace::TraceEvent::Stmt(_, sql) = event
        && !sql.starts_with("--")
    {
        crate::metrics::count_sql_statement();
    }
}

fn describe_open_error(raw: &str) -> String {
    if raw.contains("file is not a database") {
        "the file is not an SQLite database".into()
    } else if raw.contains("unable to open") {
        "the file cannot be opened (missing directory or no permission)".into()
    } else if raw.contains("readonly") || raw.contains("read-only") {
        "the file is read-only".into()
    } else {
        raw.to_string()
    }
}

#[cfg(test)]
pub mod testing {
    use super::*;

    /// A store on a fresh file in a temporary directory (WAL needs a file).
    pub fn temp_store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("test.db"), 4).expect("open store");
        (store, dir)
    }
}
