//! What a page object keeps in its SQLite storage: the page's count and sequence, the
//! visit rows not yet in D1, and today's unique-visitor state. The only code that
//! touches that storage.

use crate::domain::crypto::{base64url_decode, base64url_encode};
use crate::error::ApiResult;
use crate::http::respond::OrInternal;
use serde::{Deserialize, Serialize};
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
CREATE TABLE IF NOT EXISTS uniques (day INTEGER PRIMARY KEY, state TEXT NOT NULL);
";

/// A page as stored. `seq` numbers every visit (counted or not); D1 has seen visits up
/// to `flushed_seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageState {
    pub tenant_id: String,
    pub page_id: String,
    pub count: u64,
    pub seq: u64,
    pub flushed_seq: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// One visit, as the log keeps it: no IP, no user agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitRow {
    pub seq: u64,
    pub ts: u64,
    pub referrer_host: Option<String>,
    pub country: Option<String>,
    pub agent: String,
    pub counted: u8,
    pub is_unique: u8,
}

#[derive(Deserialize)]
struct UniquesRow {
    state: String,
}

pub struct PageStorage(SqlStorage);

fn int(n: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(n as i64)
}

fn text(s: &Option<String>) -> SqlStorageValue {
    s.clone()
        .map_or(SqlStorageValue::Null, SqlStorageValue::String)
}

impl PageStorage {
    pub fn open(sql: SqlStorage) -> ApiResult<Self> {
        sql.exec(SCHEMA, None)
            .or_internal("creating the page schema")?;
        Ok(PageStorage(sql))
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

    /// One batch: the page's new count and sequence, its new visit rows, and today's
    /// unique-visitor state when it changed.
    pub fn write(
        &self,
        page: &PageState,
        rows: &[VisitRow],
        uniques: Option<(u64, &[u8])>,
    ) -> ApiResult<()> {
        self.0
            .exec(
                "UPDATE page SET count = ?, seq = ?, updated_ms = ? WHERE singleton = 1",
                vec![int(page.count), int(page.seq), int(page.updated_ms)],
            )
            .or_internal("writing a page")?;
        for row in rows {
            self.0
                .exec(
                    "INSERT INTO visit_buffer (seq, ts, referrer_host, country, agent, counted, is_unique)
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                    vec![
                        int(row.seq),
                        int(row.ts),
                        text(&row.referrer_host),
                        text(&row.country),
                        row.agent.clone().into(),
                        int(u64::from(row.counted)),
                        int(u64::from(row.is_unique)),
                    ],
                )
                .or_internal("buffering a visit")?;
        }
        if let Some((day, state)) = uniques {
            self.0
                .exec(
                    "INSERT OR REPLACE INTO uniques (day, state) VALUES (?, ?)",
                    vec![int(day), base64url_encode(state).into()],
                )
                .or_internal("writing unique visitors")?;
            // Yesterday's visitor hashes are useless without yesterday's salt: drop them.
            self.0
                .exec("DELETE FROM uniques WHERE day < ?", vec![int(day)])
                .or_internal("dropping old unique visitors")?;
        }
        Ok(())
    }

    pub fn uniques(&self, day: u64) -> ApiResult<Option<Vec<u8>>> {
        let rows: Vec<UniquesRow> = self
            .0
            .exec("SELECT state FROM uniques WHERE day = ?", vec![int(day)])
            .and_then(|c| c.to_array())
            .or_internal("reading unique visitors")?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| base64url_decode(&r.state)))
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
}
