//! Export and import in D1: each export section is read in pages by its primary key
//! (rows read = rows exported), each line made by SQLite (`json_object`), so the Worker
//! only passes text on. An import's records go in as one JSON value per table and chunk,
//! unpacked by `json_each`.

use crate::error::{ApiError, ApiResult, OrInternal};
use crate::rows;
use crate::store::int;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

/// Rows one export query reads.
pub const PAGE_ROWS: u32 = 1_000;

/// A table exported in pages: the query (tenant `?1`, cursor `?2` as a JSON array of the
/// last row's key, page size `?3`) answers each row as its line and its key, and the
/// cursor that starts before the first row.
pub struct Section {
    pub sql: &'static str,
    pub start: &'static str,
    /// Only with `?visits=1`.
    pub visits: bool,
}

pub const SECTIONS: [Section; 5] = [
    Section {
        sql: "SELECT json_object('type', 'page', 'page', page_id, 'count', count, 'seq', version,
                'rolled_seq', rolled_seq, 'created_ms', created_ms, 'updated_ms', updated_ms),
              json_array(page_id)
              FROM pages WHERE tenant_id = ?1 AND page_id > ?2 ->> 0 ORDER BY page_id LIMIT ?3",
        start: r#"[""]"#,
        visits: false,
    },
    Section {
        sql: "SELECT json_object('type', 'page_day', 'page', page_id, 'day', day, 'visits', visits,
                'uniques', uniques),
              json_array(page_id, day)
              FROM visit_days WHERE tenant_id = ?1 AND (page_id, day) > (?2 ->> 0, ?2 ->> 1)
              ORDER BY page_id, day LIMIT ?3",
        start: r#"["",-1]"#,
        visits: false,
    },
    Section {
        sql: "SELECT json_object('type', 'series', 'page', page_id, 'unit', unit, 'start', start,
                'visits', visits, 'counted', counted, 'bots', bots, 'uniques', uniques,
                'sampled', sampled, 'level', level),
              json_array(page_id, unit, start)
              FROM stats_series WHERE tenant_id = ?1
                AND (page_id, unit, start) > (?2 ->> 0, ?2 ->> 1, ?2 ->> 2)
              ORDER BY page_id, unit, start LIMIT ?3",
        start: r#"["",-1,-1]"#,
        visits: false,
    },
    Section {
        sql: "SELECT json_object('type', 'top', 'page', page_id, 'dim', dim, 'level', level,
                'start', start, 'key', key, 'visits', visits, 'counted', counted),
              json_array(page_id, dim, level, start, key)
              FROM stats_top WHERE tenant_id = ?1
                AND (page_id, dim, level, start, key) > (?2 ->> 0, ?2 ->> 1, ?2 ->> 2, ?2 ->> 3, ?2 ->> 4)
              ORDER BY page_id, dim, level, start, key LIMIT ?3",
        start: r#"["",-1,-1,-1,""]"#,
        visits: false,
    },
    Section {
        sql: "SELECT json_object('type', 'visit', 'page', page_id, 'seq', seq, 'ts', ts,
                'referrer_host', referrer_host, 'country', country, 'agent', agent,
                'counted', counted, 'unique', is_unique),
              json_array(page_id, seq)
              FROM visits WHERE tenant_id = ?1 AND (page_id, seq) > (?2 ->> 0, ?2 ->> 1)
              ORDER BY page_id, seq LIMIT ?3",
        start: r#"["",-1]"#,
        visits: true,
    },
];

/// The tenant's own line: its settings, never its credentials.
pub async fn tenant_line(db: &D1Database, tenant: &str) -> ApiResult<Option<String>> {
    let statement = db
        .prepare(
            "SELECT json_object('type', 'tenant', 'id', id, 'label', label, 'created_ms', created_ms,
               'updated_ms', updated_ms, 'page_auto_create', json(iif(page_auto_create, 'true', 'false')),
               'count_bots', json(iif(count_bots, 'true', 'false')),
               'respect_dnt', json(iif(respect_dnt, 'true', 'false')),
               'allowed_origins', json(allowed_origins))
             FROM tenants WHERE id = ?1",
        )
        .bind(&[tenant.into()])
        .or_internal("binding a tenant export")?;
    match rows::d1_first(statement, "exporting a tenant").await? {
        Some(mut row) => row.text(0).map(Some),
        None => Ok(None),
    }
}

/// One page of a section: its lines (each ending in a newline), how many, and the cursor
/// after them (`None` when the section is done).
pub async fn section_page(
    db: &D1Database,
    section: &Section,
    tenant: &str,
    cursor: &str,
) -> ApiResult<(String, u64, Option<String>)> {
    let statement = db
        .prepare(section.sql)
        .bind(&[tenant.into(), cursor.into(), int(PAGE_ROWS)])
        .or_internal("binding an export page")?;
    let rows = rows::d1(statement, "exporting a page of rows").await?;
    let n = rows.len() as u64;
    let mut text = String::new();
    let mut last = None;
    for mut row in rows {
        text.push_str(&row.text(0)?);
        text.push('\n');
        last = Some(row.text(1)?);
    }
    Ok((text, n, last.filter(|_| n == u64::from(PAGE_ROWS))))
}

/// The next counters of the tenant after `after`, by id.
pub async fn counter_ids(db: &D1Database, tenant: &str, after: &str) -> ApiResult<Vec<String>> {
    let statement = db
        .prepare("SELECT id FROM counters WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT 100")
        .bind(&[tenant.into(), after.into()])
        .or_internal("binding a counter export")?;
    rows::each(
        rows::d1(statement, "listing counters to export").await?,
        |mut row| row.text(0),
    )
}

/// The statements that put a chunk of an export's records into D1, each kind as one JSON
/// array (`records`, by record type): a record whose key D1 already has is left as it
/// is, so importing a file twice, or again after an interruption, adds nothing twice.
pub fn import_statements(
    db: &D1Database,
    tenant: &str,
    records: &[(&'static str, String)],
) -> ApiResult<Vec<D1PreparedStatement>> {
    // In the order of `IMPORTS`: the tenant before what refers to it.
    IMPORTS
        .iter()
        .filter_map(|(kind, sql)| {
            let (_, json) = records.iter().find(|(k, _)| k == kind)?;
            Some(
                db.prepare(*sql)
                    .bind(&[tenant.into(), JsValue::from(json.as_str())])
                    .or_internal("binding an import"),
            )
        })
        .collect()
}

const IMPORTS: [(&str, &str); 7] = [
    (
        "tenant",
        "INSERT INTO tenants (id, label, created_ms, updated_ms, page_auto_create, count_bots,
           respect_dnt, allowed_origins)
         SELECT ?1, value ->> 'label', value ->> 'created_ms', value ->> 'updated_ms',
           value ->> 'page_auto_create', value ->> 'count_bots', value ->> 'respect_dnt',
           nullif(value -> 'allowed_origins', 'null')
         FROM json_each(?2) WHERE true ON CONFLICT (id) DO NOTHING",
    ),
    (
        "counter",
        "INSERT INTO counters (id, tenant_id, label, value, max_delta, version, created_ms, updated_ms)
         SELECT value ->> 'id', ?1, value ->> 'label', value ->> 'value', value ->> 'max_delta', 0,
           value ->> 'created_ms', value ->> 'updated_ms'
         FROM json_each(?2) WHERE true ON CONFLICT (id) DO NOTHING",
    ),
    (
        "page",
        "INSERT INTO pages (tenant_id, page_id, count, version, rolled_seq, created_ms, updated_ms)
         SELECT ?1, value ->> 'page', value ->> 'count', value ->> 'seq', value ->> 'rolled_seq',
           value ->> 'created_ms', value ->> 'updated_ms'
         FROM json_each(?2) WHERE true ON CONFLICT DO NOTHING",
    ),
    (
        "page_day",
        "INSERT INTO visit_days (tenant_id, page_id, day, visits, uniques)
         SELECT ?1, value ->> 'page', value ->> 'day', value ->> 'visits', value ->> 'uniques'
         FROM json_each(?2) WHERE true ON CONFLICT DO NOTHING",
    ),
    (
        "series",
        "INSERT INTO stats_series (tenant_id, page_id, unit, start, visits, counted, bots, uniques,
           sampled, level)
         SELECT ?1, value ->> 'page', value ->> 'unit', value ->> 'start', value ->> 'visits',
           value ->> 'counted', value ->> 'bots', value ->> 'uniques', value ->> 'sampled',
           value ->> 'level'
         FROM json_each(?2) WHERE true ON CONFLICT DO NOTHING",
    ),
    (
        "top",
        "INSERT INTO stats_top (tenant_id, page_id, dim, level, start, key, visits, counted)
         SELECT ?1, value ->> 'page', value ->> 'dim', value ->> 'level', value ->> 'start',
           value ->> 'key', value ->> 'visits', value ->> 'counted'
         FROM json_each(?2) WHERE true ON CONFLICT DO NOTHING",
    ),
    (
        "visit",
        "INSERT INTO visits (tenant_id, page_id, seq, ts, referrer_host, country, agent, counted,
           is_unique)
         SELECT ?1, value ->> 'page', value ->> 'seq', value ->> 'ts', value ->> 'referrer_host',
           value ->> 'country', value ->> 'agent', value ->> 'counted', value ->> 'unique'
         FROM json_each(?2) WHERE true ON CONFLICT DO NOTHING",
    ),
];

/// Which of these counter ids D1 holds under another tenant: an import must not take
/// another tenant's counter over.
pub async fn foreign_counters(db: &D1Database, tenant: &str, ids: &str) -> ApiResult<Vec<String>> {
    let statement = db
        .prepare(
            "SELECT c.id FROM json_each(?2) j JOIN counters c ON c.id = j.value WHERE c.tenant_id != ?1",
        )
        .bind(&[tenant.into(), ids.into()])
        .or_internal("binding a counter ownership check")?;
    rows::each(
        rows::d1(statement, "checking counter ownership").await?,
        |mut row| row.text(0),
    )
}

/// A failed import write: a label another counter or tenant already has is the client's
/// to fix; anything else is ours.
pub fn import_failure(e: ApiError) -> ApiError {
    match &e {
        ApiError::Internal(detail) if detail.contains("UNIQUE constraint failed") => {
            ApiError::InvalidParameter(
                "a label in this file is already taken by another tenant or counter".into(),
            )
        }
        ApiError::Internal(detail) if detail.contains("FOREIGN KEY constraint failed") => {
            ApiError::InvalidParameter(
                "the tenant does not exist here and the file has no tenant record before this"
                    .into(),
            )
        }
        _ => e,
    }
}

/// Tallies from another service's file (`domain::import_formats::Tally`), bound as one
/// JSON array of `[page, day, hour or null, referrer host or null, country or null,
/// agent, visits, counted, uniques]`, added to the daily totals and the stats rollups the
/// way a flush adds visit rows (`store::stats`): hour series only where the file has
/// times, referrers for counted visits only. The chunk's key (`?3`) is claimed first, in
/// the same transaction: a chunk already applied fails the claim and adds nothing.
const ADD_TALLIES: [&str; 5] = [
    "INSERT INTO import_chunks (tenant_id, key, created_ms) VALUES (?1, ?3, ?4)",
    "INSERT INTO pages (tenant_id, page_id, count, version, created_ms, updated_ms)
     SELECT DISTINCT ?1, value ->> 0, 0, 0, ?4, ?4 FROM json_each(?2) WHERE true
     ON CONFLICT DO NOTHING",
    "INSERT INTO visit_days (tenant_id, page_id, day, visits, uniques)
     SELECT ?1, value ->> 0, value ->> 1, SUM(value ->> 7), SUM(value ->> 8)
     FROM json_each(?2) GROUP BY 2, 3
     ON CONFLICT DO UPDATE SET visits = visits + excluded.visits, uniques = uniques + excluded.uniques",
    "INSERT INTO stats_series (tenant_id, page_id, unit, start, visits, counted, bots, uniques, sampled)
     SELECT ?1, CASE w.whole WHEN 1 THEN '' ELSE t.value ->> 0 END, u.unit,
            CASE u.unit WHEN 0 THEN t.value ->> 2 ELSE t.value ->> 1 END,
            SUM(t.value ->> 6), SUM(t.value ->> 7),
            SUM(CASE WHEN t.value ->> 5 = 'bot' THEN t.value ->> 6 ELSE 0 END), SUM(t.value ->> 8), NULL
     FROM json_each(?2) t, (SELECT 0 AS unit UNION ALL SELECT 1) u,
          (SELECT 0 AS whole UNION ALL SELECT 1) w
     WHERE u.unit = 1 OR t.value ->> 2 IS NOT NULL
     GROUP BY 2, 3, 4
     ON CONFLICT DO UPDATE SET visits = visits + excluded.visits,
       counted = counted + excluded.counted, bots = bots + excluded.bots,
       uniques = uniques + excluded.uniques",
    "INSERT INTO stats_top (tenant_id, page_id, dim, level, start, key, visits, counted)
     SELECT ?1, CASE w.whole WHEN 1 THEN '' ELSE t.value ->> 0 END, d.dim, l.level,
            (t.value ->> 1) >> l.level << l.level,
            CASE d.dim WHEN 0 THEN t.value ->> 0 WHEN 1 THEN COALESCE(t.value ->> 3, '')
                       WHEN 2 THEN COALESCE(t.value ->> 4, '') ELSE t.value ->> 5 END,
            SUM(CASE d.dim WHEN 1 THEN t.value ->> 7 ELSE t.value ->> 6 END), SUM(t.value ->> 7)
     FROM json_each(?2) t,
          (SELECT 0 AS dim UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) d,
          (SELECT value AS level FROM json_each('[0,1,2,3,4,5,6,7,8]')) l,
          (SELECT 0 AS whole UNION ALL SELECT 1) w
     WHERE (w.whole = 1 OR (d.dim > 0 AND l.level = 0)) AND NOT (d.dim = 1 AND t.value ->> 7 = 0)
     GROUP BY 2, 3, 4, 5, 6
     ON CONFLICT DO UPDATE SET visits = visits + excluded.visits, counted = counted + excluded.counted",
];

/// Adds a chunk's tallies once: `false` when its key was claimed before (nothing added).
pub async fn add_tallies(
    db: &D1Database,
    tenant: &str,
    tallies: &str,
    key: &str,
    now: u64,
) -> ApiResult<bool> {
    let params = [tenant.into(), tallies.into(), key.into(), int(now)];
    let mut statements = Vec::with_capacity(ADD_TALLIES.len());
    for sql in ADD_TALLIES {
        // Each statement takes parameters up to the highest it names.
        let used = (1..=4)
            .rev()
            .find(|n| sql.contains(&format!("?{n}")))
            .unwrap_or(1);
        statements.push(
            db.prepare(sql)
                .bind(&params[..used])
                .or_internal("binding an import")?,
        );
    }
    match db.batch(statements).await {
        Ok(_) => Ok(true),
        Err(e)
            if e.to_string()
                .contains("UNIQUE constraint failed: import_chunks") =>
        {
            Ok(false)
        }
        Err(e) => Err(ApiError::Internal(format!("adding imported totals: {e}"))),
    }
}

/// Pages an import names, made if missing (with no visits: their counts are added by
/// their objects).
pub fn ensure_pages(
    db: &D1Database,
    tenant: &str,
    pages: &str,
    now: u64,
) -> ApiResult<D1PreparedStatement> {
    db.prepare(
        "INSERT INTO pages (tenant_id, page_id, count, version, created_ms, updated_ms)
         SELECT DISTINCT ?1, value, 0, 0, ?3, ?3 FROM json_each(?2) WHERE true ON CONFLICT DO NOTHING",
    )
    .bind(&[tenant.into(), pages.into(), int(now)])
    .or_internal("binding page creation")
}

/// The site's visitors of days (`[[day, visitors], …]`), as Plausible counted them.
pub fn site_visitors(db: &D1Database, tenant: &str, days: &str) -> ApiResult<D1PreparedStatement> {
    db.prepare(
        "INSERT INTO stats_series (tenant_id, page_id, unit, start, visits, counted, bots, uniques,
           sampled, level)
         SELECT ?1, '', 1, value ->> 0, 0, 0, 0, 0, value ->> 1, 0 FROM json_each(?2) WHERE true
         ON CONFLICT DO UPDATE SET sampled = excluded.sampled, level = 0
           WHERE sampled IS NOT excluded.sampled OR level != 0",
    )
    .bind(&[tenant.into(), days.into()])
    .or_internal("binding site visitors")
}

/// The counter with this label in the tenant, if any.
pub async fn counter_by_label(
    db: &D1Database,
    tenant: &str,
    label: &str,
) -> ApiResult<Option<String>> {
    let statement = db
        .prepare("SELECT id FROM counters WHERE tenant_id = ?1 AND label = ?2")
        .bind(&[tenant.into(), label.into()])
        .or_internal("binding a counter lookup")?;
    match rows::d1_first(statement, "finding a counter by label").await? {
        Some(mut row) => row.text(0).map(Some),
        None => Ok(None),
    }
}

/// Marks the tenant as made by the import of the export with this key (`export:` and its
/// time), in the batch that creates it: only that export may be imported into it again.
pub fn claim_export(
    db: &D1Database,
    tenant: &str,
    key: &str,
    now: u64,
) -> ApiResult<D1PreparedStatement> {
    db.prepare(
        "INSERT INTO import_chunks (tenant_id, key, created_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    )
    .bind(&[tenant.into(), key.into(), int(now)])
    .or_internal("binding an export claim")
}

/// Whether the tenant was made by the import of the export with this key.
pub async fn made_by_export(db: &D1Database, tenant: &str, key: &str) -> ApiResult<bool> {
    let statement = db
        .prepare("SELECT 1 FROM import_chunks WHERE tenant_id = ?1 AND key = ?2")
        .bind(&[tenant.into(), key.into()])
        .or_internal("binding an export claim lookup")?;
    Ok(rows::d1_first(statement, "looking an export claim up")
        .await?
        .is_some())
}
