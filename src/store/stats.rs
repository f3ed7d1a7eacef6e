//! The stats rollups (`stats_series`, `stats_top`, `stats_visitors`, see migration 0006):
//! kept up to date by each page flush, in the flush's own D1 batch, and read by the
//! stats API as one statement that answers the whole JSON document.

use crate::domain::stats::StatsQuery;
use crate::domain::time::rfc3339;
use crate::domain::visit::DAY_MS;
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::store::int;
use wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{D1Database, D1PreparedStatement};

// SQL text is assembled at compile time (`concat!`): no formatting code in the bundle.
// `DAY_MS` is 86400000, `domain::stats::LEVELS` is 9 and `HASH_BITS` 52 (tests check).

/// The page's visit rows D1 has and the rollups do not yet: the rows a flush rolls up,
/// at most 5,000 sequence numbers' worth (a flush carries at most 1,000 rows; rows that
/// reached D1 some other way are caught up with by the flushes that follow).
macro_rules! fresh {
    () => {
        "WITH fresh AS (SELECT * FROM visits WHERE tenant_id = ?1 AND page_id = ?2
           AND seq > (SELECT rolled_seq FROM pages WHERE tenant_id = ?1 AND page_id = ?2)
           AND seq <= (SELECT rolled_seq FROM pages WHERE tenant_id = ?1 AND page_id = ?2) + 5000) "
    };
}
/// Small constant tables the rollups multiply rows by.
macro_rules! whole {
    () => {
        "(SELECT 0 AS whole UNION ALL SELECT 1)"
    };
}
macro_rules! dims {
    () => {
        "(SELECT 0 AS dim UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3)"
    };
}
/// (A list, not nine `UNION ALL` terms: D1 allows few terms in a compound `SELECT`.)
macro_rules! levels {
    () => {
        "(SELECT value AS level FROM json_each('[0,1,2,3,4,5,6,7,8]'))"
    };
}

const ROLL_SERIES: &str = concat!(
    fresh!(),
    "INSERT INTO stats_series (tenant_id, page_id, unit, start, visits, counted, bots, uniques)
     SELECT ?1, CASE w.whole WHEN 1 THEN '' ELSE ?2 END, u.unit, f.ts / u.len,
            COUNT(*), SUM(f.counted), SUM(f.agent = 'bot'), SUM(f.is_unique)
     FROM fresh f, (SELECT 0 AS unit, 3600000 AS len UNION ALL SELECT 1, 86400000) u, ",
    whole!(),
    " w WHERE true GROUP BY 2, 3, 4
     ON CONFLICT DO UPDATE SET visits = visits + excluded.visits,
       counted = counted + excluded.counted, bots = bots + excluded.bots,
       uniques = uniques + excluded.uniques"
);

/// Top-list counts, from the new rows grouped first (a flush's rows share a handful of
/// days, referrers, countries and agents). Referrers count counted visits only: a bot's
/// `Referer` is whatever it says, and would fill the lists with hosts nobody came from.
const ROLL_TOP: &str = concat!(
    fresh!(),
    ", agg AS (SELECT ts / 86400000 AS day, referrer_host, country, agent, counted, COUNT(*) AS n
               FROM fresh GROUP BY 1, 2, 3, 4, 5)
     INSERT INTO stats_top (tenant_id, page_id, dim, level, start, key, visits, counted)
     SELECT ?1, CASE w.whole WHEN 1 THEN '' ELSE ?2 END, d.dim, l.level,
            a.day >> l.level << l.level,
            CASE d.dim WHEN 0 THEN ?2 WHEN 1 THEN COALESCE(a.referrer_host, '')
                       WHEN 2 THEN COALESCE(a.country, '') ELSE a.agent END,
            SUM(a.n), SUM(a.n * a.counted)
     FROM agg a, ",
    dims!(),
    " d, ",
    levels!(),
    " l, ",
    whole!(),
    " w WHERE (w.whole = 1 OR (d.dim > 0 AND l.level = 0)) AND NOT (d.dim = 1 AND a.counted = 0)
     GROUP BY 2, 3, 4, 5, 6
     ON CONFLICT DO UPDATE SET visits = visits + excluded.visits,
       counted = counted + excluded.counted"
);

/// New site-wide visitors: the eighth field of a flushed row (`rows_json`) is the site
/// hash of a first visit; a day at `level` keeps hashes below 2^(52 - level). Only days
/// whose hashes are still kept (yesterday and today) take new ones: a late row of an
/// older day would otherwise count a visitor whose hash is already gone. The flush's
/// rows come first (`CROSS JOIN` fixes the order), each finding its day by primary key.
const ROLL_VISITORS: &str = "INSERT INTO stats_visitors (tenant_id, day, hash)
     SELECT ?1, s.start, j.value ->> 7
     FROM json_each(?3) j
     CROSS JOIN stats_series s ON s.tenant_id = ?1 AND s.page_id = '' AND s.unit = 1
       AND s.start = (j.value ->> 1) / 86400000
     WHERE j.value ->> 7 IS NOT NULL AND s.sampled IS NOT NULL AND s.start >= ?4
       AND j.value ->> 0 > (SELECT rolled_seq FROM pages WHERE tenant_id = ?1 AND page_id = ?2)
       AND ((j.value ->> 7) >> (52 - s.level)) = 0
     ON CONFLICT DO NOTHING";

/// A day past the exact limit samples one level deeper: it counts the hashes the new
/// level keeps (the trigger `stats_level_raised` deletes the rest).
const RAISE_LEVEL: &str = "UPDATE stats_series SET level = level + 1,
       sampled = (SELECT COUNT(*) FROM stats_visitors v WHERE v.tenant_id = ?1
         AND v.day = stats_series.start AND (v.hash >> (51 - stats_series.level)) = 0)
     WHERE tenant_id = ?1 AND page_id = '' AND unit = 1 AND start >= ?3 AND sampled > ?4
       AND ?2 IS NOT NULL";

const EXPIRE_TENANT_VISITORS: &str =
    "DELETE FROM stats_visitors WHERE tenant_id = ?1 AND day < ?3 AND ?2 IS NOT NULL";

const ROLLED: &str = "UPDATE pages SET rolled_seq = MIN(rolled_seq + 5000,
       (SELECT MAX(seq) FROM visits WHERE tenant_id = ?1 AND page_id = ?2))
     WHERE tenant_id = ?1 AND page_id = ?2
       AND rolled_seq < (SELECT MAX(seq) FROM visits WHERE tenant_id = ?1 AND page_id = ?2)";

/// The statements that roll the page's new rows up, after the flush inserted them: hour
/// and day totals (the page's and the tenant's), top-list counts per block, new
/// site-wide visitors (from `rows`, the flush's `rows_json`), a day's sample level
/// raised past `exact_visitors`, and the last rolled row moved on. The tenant's hashes of
/// days before yesterday go (the salt that made them is gone).
pub fn rollup_statements(
    db: &D1Database,
    tenant: &str,
    page: &str,
    rows: &str,
    today: u64,
    exact_visitors: u64,
) -> ApiResult<Vec<D1PreparedStatement>> {
    let yesterday = int(today.saturating_sub(1));
    let steps: [(&str, Vec<wasm_bindgen::JsValue>); 6] = [
        (ROLL_SERIES, vec![]),
        (ROLL_TOP, vec![]),
        (ROLL_VISITORS, vec![rows.into(), yesterday.clone()]),
        (RAISE_LEVEL, vec![yesterday.clone(), int(exact_visitors)]),
        (EXPIRE_TENANT_VISITORS, vec![yesterday]),
        (ROLLED, vec![]),
    ];
    steps
        .into_iter()
        .map(|(sql, extra)| {
            let mut params = vec![tenant.into(), page.into()];
            params.extend(extra);
            db.prepare(sql)
                .bind(&params)
                .or_internal("binding a rollup")
        })
        .collect()
}

/// A deleted page leaves the stats: its own rows go, and what it added to the tenant's
/// totals and top lists is taken back out. (Its visitors stay in the site-wide counts of
/// their days: which of them read only this page is not known.)
const DELETE_PAGE: [&str; 6] = [
    "UPDATE stats_series AS t SET visits = t.visits - p.visits, counted = t.counted - p.counted,
       bots = t.bots - p.bots, uniques = t.uniques - p.uniques
     FROM stats_series p
     WHERE p.tenant_id = ?1 AND p.page_id = ?2 AND t.tenant_id = ?1 AND t.page_id = ''
       AND t.unit = p.unit AND t.start = p.start",
    concat!(
        "UPDATE stats_top AS t SET visits = t.visits - p.visits, counted = t.counted - p.counted
         FROM (SELECT r.dim, l.level, r.start >> l.level << l.level AS start, r.key,
                      SUM(r.visits) AS visits, SUM(r.counted) AS counted
               FROM stats_top r, ",
        levels!(),
        " l WHERE r.tenant_id = ?1 AND r.page_id = ?2
               GROUP BY 1, 2, 3, 4) p
         WHERE t.tenant_id = ?1 AND t.page_id = '' AND t.dim = p.dim AND t.level = p.level
           AND t.start = p.start AND t.key = p.key"
    ),
    // Rows left at zero, among the keys this page had (not the tenant's every row).
    concat!(
        "DELETE FROM stats_top WHERE tenant_id = ?1 AND page_id = '' AND visits <= 0
           AND (dim, level, start, key) IN (SELECT r.dim, l.level, r.start >> l.level << l.level, r.key
             FROM stats_top r, ",
        levels!(),
        " l WHERE r.tenant_id = ?1 AND r.page_id = ?2)"
    ),
    // The page in the top pages of every block it had visits in.
    concat!(
        "DELETE FROM stats_top WHERE tenant_id = ?1 AND page_id = '' AND dim = 0 AND key = ?2
           AND (level, start) IN (SELECT l.level, s.start >> l.level << l.level
             FROM stats_series s, ",
        levels!(),
        " l WHERE s.tenant_id = ?1 AND s.page_id = ?2 AND s.unit = 1)"
    ),
    "DELETE FROM stats_top WHERE tenant_id = ?1 AND page_id = ?2",
    "DELETE FROM stats_series WHERE tenant_id = ?1 AND page_id = ?2",
];

pub fn delete_page_statements(
    db: &D1Database,
    tenant: &str,
    page: &str,
) -> ApiResult<Vec<D1PreparedStatement>> {
    DELETE_PAGE
        .iter()
        .map(|sql| {
            db.prepare(*sql)
                .bind(&[tenant.into(), page.into()])
                .or_internal("binding a rollup deletion")
        })
        .collect()
}

/// Site-wide visitor hashes of days before `day` go: the cron's sweep for tenants no
/// page flushed since.
pub async fn expire_visitors(db: &D1Database, day: u64) -> ApiResult<u64> {
    let expiry = db
        .prepare("DELETE FROM stats_visitors WHERE day < ?1")
        .bind(&[int(day)])
        .or_internal("binding a visitor expiry")?;
    let changed = crate::store::changed(db, vec![expiry], "expiring site-wide visitors").await?;
    Ok(changed.iter().sum())
}

/// The answer of `GET /tenants/{t}/stats`, made by D1 in one statement, and the rows
/// D1 read for it.
pub struct Answer {
    pub json: String,
    pub rows_read: u64,
}

/// Totals over a range of the series (`?1` tenant, `?2` page, '' for the whole tenant;
/// buckets `[from, to)`, days `[day_from, day_to)`) as a JSON object. Site-wide
/// visitors come from the tenant's day rows (a single page's are its uniques): NULL when
/// a day of the range had visits before they were kept (a sum of the other days would
/// pass for the whole range's), 0 for a range without visits. Only a site's figure is
/// ever estimated. D1 binds JavaScript numbers as reals: bound numbers are compared, or
/// cast to integers before any arithmetic.
macro_rules! totals {
    ($from:literal, $to:literal, $day_from:literal, $day_to:literal) => {
        concat!(
            "SELECT json_object('visits', COALESCE(SUM(visits), 0), 'counted', COALESCE(SUM(counted), 0),
               'bots', COALESCE(SUM(bots), 0), 'uniques', COALESCE(SUM(uniques), 0),
               'visitors', (SELECT CASE WHEN ?2 != '' THEN COALESCE(SUM(uniques), 0)
                                        WHEN SUM(sampled IS NULL) > 0 THEN NULL
                                        ELSE COALESCE(SUM(sampled << level), 0) END
                            FROM stats_series WHERE tenant_id = ?1 AND page_id = ?2 AND unit = 1
                              AND start >= ", $day_from, " AND start < ", $day_to, "),
               'visitors_estimated', json((SELECT CASE WHEN ?2 = '' AND MAX(level) > 0 THEN 'true' ELSE 'false' END
                            FROM stats_series WHERE tenant_id = ?1 AND page_id = '' AND unit = 1
                              AND start >= ", $day_from, " AND start < ", $day_to, "))) AS j
             FROM stats_series WHERE tenant_id = ?1 AND page_id = ?2 AND unit = ?3
               AND start >= ", $from, " AND start < ", $to
        )
    };
}

/// One top list, largest first, at most `?7` long (all four are made in one pass over
/// the ranked entries, `lists`).
macro_rules! ranked {
    ($dim:literal) => {
        concat!(
            "json(COALESCE((SELECT list FROM lists WHERE dim = ",
            $dim,
            "), '[]'))"
        )
    };
}

/// The whole answer, in one statement (`STATS_HEAD`, `tops_sql`, `STATS_TAIL`): the range,
/// totals, the previous period's totals, every bucket of the series (empty ones as zeros)
/// and the top lists. Embedded documents pass through `json()`: a subquery's result loses
/// its JSON type. Narrowed to one page, the top pages are that page.
///
/// A site's top lists: the candidates are the keys of the 256-day blocks that overlap the
/// range (every key with visits in the range is among them, each taken once), and
/// each candidate's visits are summed over the range's blocks by primary-key lookups
/// (`tops_sql`). Summing the blocks' rows with a `GROUP BY` sorted every (block, key) row,
/// which D1 counts as read twice: 21,887 rows for 90 days of the benchmark site, against
/// 20,000 wanted. The `CROSS JOIN`s fix the join order: left to itself the planner searched
/// by tenant and page only and read every top-list row of the tenant (565,598 rows for 7
/// days).
const STATS_HEAD: &str = concat!(
    "WITH RECURSIVE buckets(b) AS (SELECT CAST(?4 AS INTEGER) WHERE ?4 < ?5 UNION ALL SELECT b + 1 FROM buckets WHERE b + 1 < ?5),
     cur AS (", totals!("?4", "?5", "?16", "?17"), "),
     prev AS (", totals!("?8", "?9", "?20", "?21"), "),
"
);

/// A site's top-list candidates summed over the range's blocks, one primary-key lookup
/// per block and candidate, the blocks written into the SQL as integer literals: a bound
/// list would be read again for every candidate, and D1 counts those reads. A page's own
/// lists (per day) are summed with a `GROUP BY` over its few rows.
fn tops_sql(blocks: &[(u32, u64)], cover: &[u64]) -> String {
    // Each 256-day block's keys, less those an earlier one already gave.
    let candidates: Vec<String> = cover
        .iter()
        .enumerate()
        .map(|(i, start)| {
            let earlier: String = cover[..i]
                .iter()
                .map(|before| {
                    format!(
                        " AND NOT EXISTS (SELECT 1 FROM stats_top e WHERE e.tenant_id = ?1 AND e.page_id = ''
                           AND e.dim = d.dim AND e.level = 8 AND e.start = {before} AND e.key = t.key)"
                    )
                })
                .collect();
            format!(
                "SELECT d.dim, t.key FROM {dims} d CROSS JOIN stats_top t ON t.tenant_id = ?1
                   AND t.page_id = '' AND t.dim = d.dim AND t.level = 8 AND t.start = {start}
                 WHERE ?2 = ''{earlier}",
                dims = dims!()
            )
        })
        .collect();
    let lookups: Vec<String> = blocks
        .iter()
        .map(|(level, start)| {
            format!(
                "COALESCE((SELECT visits FROM stats_top t WHERE t.tenant_id = ?1 AND t.page_id = ''
                   AND t.dim = cand.dim AND t.level = {level} AND t.start = {start} AND t.key = cand.key), 0)"
            )
        })
        .collect();
    let sum = if lookups.is_empty() {
        "0".to_string()
    } else {
        lookups.join(" + ")
    };
    format!(
        "     cand AS ({candidates}),
     tops AS (SELECT dim, key, {sum} AS v FROM cand
              UNION ALL
              SELECT t.dim, t.key, SUM(t.visits) FROM json_each(?6) blk CROSS JOIN {dims} d
              CROSS JOIN stats_top t ON t.tenant_id = ?1 AND t.page_id = ?2 AND t.dim = d.dim
                AND t.level = blk.value ->> 0 AND t.start = blk.value ->> 1
              WHERE ?2 != '' GROUP BY t.dim, t.key),
",
        candidates = if candidates.is_empty() {
            "SELECT 0 AS dim, '' AS key WHERE false".to_string()
        } else {
            candidates.join(" UNION ALL ")
        },
        dims = dims!()
    )
}

const STATS_TAIL: &str = concat!(
    "     ranked AS (SELECT dim, key, v, ROW_NUMBER() OVER (PARTITION BY dim ORDER BY v DESC, key) AS rn FROM tops WHERE v > 0),
     lists AS (SELECT dim, json_group_array(json_object('value', NULLIF(key, ''), 'visits', v,
                 'counted', (SELECT SUM(t.counted) FROM json_each(?6) blk CROSS JOIN stats_top t
                   ON t.tenant_id = ?1 AND t.page_id = ?2 AND t.dim = r.dim AND t.level = blk.value ->> 0
                     AND t.start = blk.value ->> 1 AND t.key = r.key))) AS list
               FROM (SELECT dim, key, v FROM ranked WHERE rn <= ?7 ORDER BY dim, v DESC, key) r GROUP BY dim)
     SELECT json_object(
       'from', ?11, 'to', ?12, 'granularity', ?13, 'page_id', NULLIF(?2, ''),
       'totals', json((SELECT j FROM cur)),
       'previous', json_set((SELECT j FROM prev), '$.from', ?18, '$.to', ?19),
       'series', json((SELECT COALESCE(json_group_array(json_object(
           'start', strftime('%Y-%m-%dT%H:%M:%fZ', b * CAST(?10 AS INTEGER) / 1000, 'unixepoch'),
           'visits', COALESCE(s.visits, 0), 'counted', COALESCE(s.counted, 0),
           'bots', COALESCE(s.bots, 0), 'uniques', COALESCE(s.uniques, 0),
           'visitors', CASE WHEN ?3 = 0 THEN NULL WHEN s.start IS NULL THEN 0 WHEN ?2 = '' THEN s.sampled << s.level
                            ELSE COALESCE(s.uniques, 0) END)), '[]')
         FROM buckets LEFT JOIN stats_series s ON s.tenant_id = ?1 AND s.page_id = ?2
           AND s.unit = ?3 AND s.start = b)),
       'top', json_object(
         'pages', CASE WHEN ?2 = '' THEN ", ranked!("0"), " ELSE json_array(json_object('value', ?2,
                    'visits', (SELECT j ->> 'visits' FROM cur), 'counted', (SELECT j ->> 'counted' FROM cur))) END,
         'referrers', ", ranked!("1"), ",
         'countries', ", ranked!("2"), ",
         'agents', ", ranked!("3"), "),
       'top_days', json_object('from', ?14, 'to', ?15)) AS stats"
);

/// Runs the stats statement for `query` on the tenant (which must exist: the caller
/// checked).
pub async fn stats(db: &D1Database, tenant: &str, query: &StatsQuery) -> ApiResult<Answer> {
    let (unit, from, to) = query.buckets();
    let (previous_from, previous_to) = query.previous();
    let size = query.range.granularity.bucket_ms();
    let previous_days = (
        previous_from * size / DAY_MS,
        (previous_to * size).div_ceil(DAY_MS),
    );
    let granularity = if unit == 1 { "day" } else { "hour" };
    let page = query.page.as_ref().map_or("", |p| p.as_str());
    let statement = db
        .prepare(format!(
            "{STATS_HEAD}{}{STATS_TAIL}",
            tops_sql(&query.site_blocks(), &query.cover())
        ))
        .bind(&[
            tenant.into(),
            page.into(),
            int(unit),
            int(from),
            int(to),
            query.blocks_json().into(),
            int(query.limit),
            int(previous_from),
            int(previous_to),
            int(size),
            rfc3339(query.range.from_ms).into(),
            rfc3339(query.range.to_ms).into(),
            granularity.into(),
            rfc3339(query.days.0 * DAY_MS).into(),
            rfc3339(query.days.1 * DAY_MS).into(),
            int(query.days.0),
            int(query.days.1),
            rfc3339(previous_from * size).into(),
            rfc3339(previous_to * size).into(),
            int(previous_days.0),
            int(previous_days.1),
        ])
        .or_internal("binding a stats query")?;
    // The statement's result object directly: its one row and its `meta.rows_read`.
    let promise = statement
        .inner()
        .all()
        .map_err(|_| ApiError::internal("running a stats query"))?;
    let result: worker::worker_sys::D1Result = JsFuture::from(promise)
        .await
        .map_err(|e| ApiError::Internal(format!("reading stats: {e:?}")))?
        .unchecked_into();
    let field = |object: &wasm_bindgen::JsValue, name: &str| {
        worker::js_sys::Reflect::get(object, &name.into()).ok()
    };
    let json = result
        .results()
        .ok()
        .flatten()
        .map(|rows| rows.get(0))
        .and_then(|row| field(&row, "stats"))
        .and_then(|v| v.as_string())
        .ok_or_else(|| ApiError::internal("stats query answered nothing"))?;
    let rows_read = result
        .meta()
        .ok()
        .and_then(|meta| field(&meta, "rows_read"))
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0) as u64;
    Ok(Answer { json, rows_read })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::stats::{HASH_BITS, LEVELS};

    #[test]
    fn the_sql_uses_the_domain_constants() {
        assert_eq!(DAY_MS, 86_400_000);
        assert_eq!(levels!().matches(',').count() as u32 + 1, LEVELS);
        assert!(ROLL_VISITORS.contains(&format!("({HASH_BITS} - s.level)")));
        assert!(RAISE_LEVEL.contains(&format!("({} - stats_series.level)", HASH_BITS - 1)));
        let migration = include_str!("../../migrations/0006_stats_rollups.sql");
        assert!(migration.contains(&format!("(hash >> ({HASH_BITS} - NEW.level))")));
    }
}
