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
use crate::objects::schema::Schema;
use crate::rows;
use worker::{SqlStorage, SqlStorageValue, Storage};

/// The storage's versions (`objects::schema`). 1: as released in 0.1.0 (with the
/// column 0.1.0 itself added to older visit buffers); 2: the `imports` table (import
/// chunks already applied).
pub static SCHEMA: Schema = Schema {
    object: "page",
    steps: &[V1, V2],
    unversioned_repairs: &["ALTER TABLE visit_buffer ADD COLUMN site_hash INTEGER"],
};

const V1: &str = "
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
  is_unique INTEGER NOT NULL,
  site_hash INTEGER
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

const V2: &str = "CREATE TABLE IF NOT EXISTS imports (key TEXT PRIMARY KEY) WITHOUT ROWID;";

/// The columns of a visit row, in the order of `domain::visit::rows_json`.
const VISIT_COLUMNS: &str =
    "(seq, ts, referrer_host, country, agent, counted, is_unique, site_hash)";
/// Rows from a `rows_json` array bound as `?`.
const FROM_ROWS_JSON: &str = "SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7 FROM json_each(?)";

/// Every table, for deleting the page.
const TABLES: [&str; 6] = [
    "page",
    "imports",
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
    pub fn open(storage: &Storage) -> ApiResult<Self> {
        SCHEMA.apply(storage)?;
        Ok(PageStorage(storage.sql()))
    }

    pub fn read(&self) -> ApiResult<Option<PageState>> {
        let row = rows::sql_first(
            self.0.exec(
                "SELECT tenant_id, page_id, count, seq, flushed_seq, created_ms, updated_ms FROM page",
                None,
            ),
            "reading the page row",
        )?;
        let Some(mut row) = row else { return Ok(None) };
        Ok(Some(PageState {
            tenant_id: row.text(0)?,
            page_id: row.text(1)?,
            count: row.uint(2)?,
            seq: row.uint(3)?,
            flushed_seq: row.uint(4)?,
            created_ms: row.uint(5)?,
            updated_ms: row.uint(6)?,
        }))
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
        let row = rows::sql_first(
            self.0
                .exec("SELECT settings, read_ms FROM tenant_settings", None),
            "reading tenant settings",
        )?;
        let Some(mut row) = row else { return Ok(None) };
        let read_ms = row.uint(1)?;
        Ok(serde_json::from_str(&row.text(0)?)
            .ok()
            .as_ref()
            .and_then(TenantSettings::from_json)
            .map(|settings| (settings, read_ms)))
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
        let row = rows::sql_first(
            self.0
                .exec("SELECT day, exact, beyond, sketch FROM day_uniques", None),
            "reading unique visitors",
        )?;
        let Some(mut row) = row else { return Ok(None) };
        Ok(Some(DayUniques {
            day: row.uint(0)?,
            exact: row.uint(1)?,
            beyond: row.uint(2)?,
            sketch: row
                .opt_text(3)?
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
        let found = rows::sql_first(
            self.0.exec(
                "SELECT 1 FROM visitors WHERE hash = ?",
                vec![SqlStorageValue::Blob(hash.to_vec())],
            ),
            "looking up a visitor",
        )?;
        Ok(found.is_some())
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
        let rows = rows::sql(
            self.0.exec(
                "SELECT seq, ts, referrer_host, country, agent, counted, is_unique, site_hash FROM visit_buffer ORDER BY seq LIMIT ?",
                vec![int(u64::from(limit))],
            ),
            "reading buffered visits",
        )?;
        rows::each(rows, |mut row| {
            Ok(VisitRow {
                seq: row.uint(0)?,
                ts: row.uint(1)?,
                referrer_host: row.opt_text(2)?,
                country: row.opt_text(3)?,
                agent: row.text(4)?,
                counted: u8::from(row.flag(5)?),
                is_unique: u8::from(row.flag(6)?),
                site: row.opt_int(7)?,
            })
        })
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
    /// Whether an import's addition with this key was made.
    pub fn imported(&self, key: &str) -> ApiResult<bool> {
        let found = rows::sql_first(
            self.0
                .exec("SELECT 1 FROM imports WHERE key = ?", vec![key.into()]),
            "looking an import up",
        )?;
        Ok(found.is_some())
    }

    pub fn record_import(&self, key: &str) -> ApiResult<()> {
        self.0
            .exec("INSERT INTO imports (key) VALUES (?)", vec![key.into()])
            .map(drop)
            .or_internal("recording an import")
    }

    pub fn clear(&self) -> ApiResult<()> {
        TABLES.iter().try_for_each(|table| {
            self.0
                .exec(&format!("DELETE FROM {table}"), None)
                .map(drop)
                .or_internal("deleting a page")
        })
    }
}
