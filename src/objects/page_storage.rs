//! What a page object keeps in its SQLite storage: the page's count and sequence, the
//! visit rows not yet in D1, today's unique visitors (one row per keyed visitor hash,
//! plus the day's totals), and its tenant's settings, so a visit never needs D1. The
//! only code that touches that storage.

use crate::domain::crypto::{base64url_decode, base64url_encode};
use crate::domain::page::PageState;
use crate::domain::uniques::{DayUniques, Sketch};
use crate::domain::views::TenantSettings;
use crate::domain::visit::{rows_json, VisitRow};
use crate::error::{ApiResult, OrInternal};
use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS page (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  tenant_id TEXT NOT NULL,
  page_id TEXT NOT NULL,
  count INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  flushed_seq INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS visit_buffer (
  seq INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  referrer_host TEXT,
  country TEXT,
  agent TEXT NOT NULL,
  counted INTEGER NOT NULL,
  is_unique INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS visitors (hash BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS day_uniques (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  day INTEGER NOT NULL,
  exact INTEGER NOT NULL,
  beyond INTEGER NOT NULL,
  sketch TEXT
);
CREATE TABLE IF NOT EXISTS tenant_settings (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  settings TEXT NOT NULL,
  read_ms INTEGER NOT NULL
);
";

/// The columns of a visit row, in the order of `domain::visit::rows_json`.
const VISIT_COLUMNS: &str = "(seq, ts, referrer_host, country, agent, counted, is_unique)";
/// Rows from a `rows_json` array bound as `?`.
const FROM_ROWS_JSON: &str = "SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6 FROM json_each(?)";

/// Every table, for deleting the page.
const TABLES: [&str; 5] = [
    "page",
    "visit_buffer",
    "visitors",
    "day_uniques",
    "tenant_settings",
];

/// What one write batch stores.
pub struct BatchWrite {
    pub page: PageState,
    pub rows: Vec<VisitRow>,
    /// Hashes of the batch's new visitors, all of `uniques.day`.
    pub visitors: Vec<[u8; 16]>,
    /// The day's totals, when they changed.
    pub uniques: Option<DayUniques>,
}

#[derive(Deserialize)]
struct DayUniquesRow {
    day: u64,
    exact: u64,
    beyond: u64,
    sketch: Option<String>,
}

#[derive(Deserialize)]
struct SettingsRow {
    settings: String,
    read_ms: u64,
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

#[derive(Deserialize)]
struct LegacyUniques {
    day: u64,
    state: String,
}

#[derive(Clone)]
pub struct PageStorage(SqlStorage);

fn int(n: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(n as i64)
}

fn text(s: &Option<String>) -> SqlStorageValue {
    s.clone()
        .map_or(SqlStorageValue::Null, SqlStorageValue::String)
}

impl PageStorage {
    pub fn open(sql: SqlStorage, today: u64) -> ApiResult<Self> {
        sql.exec(SCHEMA, None)
            .or_internal("creating the page schema")?;
        let storage = PageStorage(sql);
        storage.upgrade_uniques(today)?;
        Ok(storage)
    }

    /// Objects written before unique visitors were rows kept the day's hashes as one
    /// blob (`uniques`): today's exact set moves into `visitors`, and the blob goes.
    fn upgrade_uniques(&self, today: u64) -> ApiResult<()> {
        let Ok(rows) = self
            .0
            .exec("SELECT day, state FROM uniques", None)
            .and_then(|c| c.to_array::<LegacyUniques>())
        else {
            return Ok(()); // no such table: nothing to upgrade
        };
        let blob = rows
            .into_iter()
            .find(|r| r.day == today)
            .and_then(|r| base64url_decode(&r.state));
        if let Some((0, hashes)) = blob.as_deref().and_then(<[u8]>::split_first) {
            let mut uniques = DayUniques::new(today);
            for hash in hashes.chunks_exact(16) {
                self.0
                    .exec(
                        "INSERT OR IGNORE INTO visitors (hash) VALUES (?)",
                        vec![SqlStorageValue::Blob(hash.to_vec())],
                    )
                    .or_internal("upgrading unique visitors")?;
                uniques.exact += 1;
            }
            self.write_uniques(&uniques)?;
        }
        self.0
            .exec("DROP TABLE uniques", None)
            .map(drop)
            .or_internal("dropping the old unique visitors")
    }

    pub fn read(&self) -> ApiResult<Option<PageState>> {
        let rows: Vec<PageState> = self
            .0
            .exec(
                "SELECT tenant_id, page_id, count, seq, flushed_seq, created_ms, updated_ms FROM page",
                None,
            )
            .and_then(|c| c.to_array())
            .or_internal("reading the page row")?;
        Ok(rows.into_iter().next())
    }

    /// Takes on a page D1 already holds; does nothing if this object has one.
    pub fn adopt(&self, page: &PageState) -> ApiResult<()> {
        self.0
            .exec(
                "INSERT OR IGNORE INTO page (singleton, tenant_id, page_id, count, seq, flushed_seq, created_ms, updated_ms)
                 VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    page.tenant_id.clone().into(),
                    page.page_id.clone().into(),
                    int(page.count),
                    int(page.seq),
                    int(page.flushed_seq),
                    int(page.created_ms),
                    int(page.updated_ms),
                ],
            )
            .map(drop)
            .or_internal("adopting a page")
    }

    /// The tenant's settings as last read from D1, and when.
    pub fn settings(&self) -> ApiResult<Option<(TenantSettings, u64)>> {
        let rows: Vec<SettingsRow> = self
            .0
            .exec("SELECT settings, read_ms FROM tenant_settings", None)
            .and_then(|c| c.to_array())
            .or_internal("reading tenant settings")?;
        Ok(rows.into_iter().next().and_then(|row| {
            let settings = serde_json::from_str(&row.settings).ok()?;
            Some((settings, row.read_ms))
        }))
    }

    pub fn write_settings(&self, settings: &TenantSettings, read_ms: u64) -> ApiResult<()> {
        let json = serde_json::to_string(settings).or_internal("encoding tenant settings")?;
        self.0
            .exec(
                "INSERT OR REPLACE INTO tenant_settings (singleton, settings, read_ms) VALUES (1, ?, ?)",
                vec![json.into(), int(read_ms)],
            )
            .map(drop)
            .or_internal("storing tenant settings")
    }

    /// The unique-visitor totals of the day they were last written for.
    pub fn day_uniques(&self) -> ApiResult<Option<DayUniques>> {
        let rows: Vec<DayUniquesRow> = self
            .0
            .exec("SELECT day, exact, beyond, sketch FROM day_uniques", None)
            .and_then(|c| c.to_array())
            .or_internal("reading unique visitors")?;
        Ok(rows.into_iter().next().map(|row| DayUniques {
            day: row.day,
            exact: row.exact,
            beyond: row.beyond,
            sketch: row
                .sketch
                .as_deref()
                .and_then(base64url_decode)
                .and_then(|b| Sketch::from_bytes(&b)),
        }))
    }

    fn write_uniques(&self, uniques: &DayUniques) -> ApiResult<()> {
        let sketch = uniques
            .sketch
            .as_ref()
            .map(|s| base64url_encode(s.as_bytes()));
        self.0
            .exec(
                "INSERT OR REPLACE INTO day_uniques (singleton, day, exact, beyond, sketch) VALUES (1, ?, ?, ?, ?)",
                vec![
                    int(uniques.day),
                    int(uniques.exact),
                    int(uniques.beyond),
                    text(&sketch),
                ],
            )
            .map(drop)
            .or_internal("writing unique visitors")
    }

    /// True when today's visitor set holds this hash.
    pub fn knows_visitor(&self, hash: &[u8; 16]) -> ApiResult<bool> {
        self.0
            .exec(
                "SELECT COUNT(*) AS n FROM visitors WHERE hash = ?",
                vec![SqlStorageValue::Blob(hash.to_vec())],
            )
            .and_then(|c| c.one::<Count>())
            .map(|c| c.n > 0)
            .or_internal("looking up a visitor")
    }

    /// A new day: the last day's visitor hashes go (its salt is gone, so they could
    /// never be matched again), and the day starts from nothing.
    pub fn start_day(&self, day: u64) -> ApiResult<()> {
        // Without a WHERE clause SQLite truncates the table instead of visiting rows.
        self.0
            .exec("DELETE FROM visitors", None)
            .or_internal("dropping the last day's visitors")?;
        self.write_uniques(&DayUniques::new(day))
    }

    /// One batch: the page's new count and sequence, its new visit rows, its new visitors
    /// and the day's totals. Run it inside `transaction::atomically`.
    pub fn write(&self, batch: &BatchWrite) -> ApiResult<()> {
        let page = &batch.page;
        self.0
            .exec(
                "UPDATE page SET count = ?, seq = ?, updated_ms = ? WHERE singleton = 1",
                vec![int(page.count), int(page.seq), int(page.updated_ms)],
            )
            .or_internal("writing a page")?;
        // The whole batch's rows as one JSON value, unpacked by SQLite: one call across to
        // the runtime however many visits the batch holds.
        if !batch.rows.is_empty() {
            self.0
                .exec(
                    &format!("INSERT INTO visit_buffer {VISIT_COLUMNS} {FROM_ROWS_JSON}"),
                    vec![rows_json(&batch.rows).into()],
                )
                .or_internal("buffering visits")?;
        }
        for hashes in batch.visitors.chunks(100) {
            let values = vec!["(?)"; hashes.len()].join(", ");
            let params = hashes
                .iter()
                .map(|h| SqlStorageValue::Blob(h.to_vec()))
                .collect::<Vec<_>>();
            self.0
                .exec(
                    &format!("INSERT INTO visitors (hash) VALUES {values}"),
                    params,
                )
                .or_internal("remembering visitors")?;
        }
        match &batch.uniques {
            Some(uniques) => self.write_uniques(uniques),
            None => Ok(()),
        }
    }

    /// The oldest buffered visits, at most `limit`.
    pub fn buffered(&self, limit: u32) -> ApiResult<Vec<VisitRow>> {
        self.0
            .exec(
                "SELECT seq, ts, referrer_host, country, agent, counted, is_unique FROM visit_buffer ORDER BY seq LIMIT ?",
                vec![int(u64::from(limit))],
            )
            .and_then(|c| c.to_array())
            .or_internal("reading buffered visits")
    }

    /// D1 confirmed rows up to `seq`: they leave the buffer.
    pub fn confirm(&self, seq: u64) -> ApiResult<()> {
        self.0
            .exec("DELETE FROM visit_buffer WHERE seq <= ?", vec![int(seq)])
            .or_internal("dropping flushed visits")?;
        self.0
            .exec(
                "UPDATE page SET flushed_seq = MAX(flushed_seq, ?) WHERE singleton = 1",
                vec![int(seq)],
            )
            .map(drop)
            .or_internal("recording a page flush")
    }

    /// Forgets the page entirely (it is being deleted). Run it inside
    /// `transaction::atomically`.
    pub fn clear(&self) -> ApiResult<()> {
        TABLES.iter().try_for_each(|table| {
            self.0
                .exec(&format!("DELETE FROM {table}"), None)
                .map(drop)
                .or_internal("deleting a page")
        })
    }
}
