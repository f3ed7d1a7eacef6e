//! `POST /tenants/{t}/import`: an edgecount export, another service's CSV export, or
//! "start at N" lines, read from the body as it streams in, checked and applied a chunk
//! of `CHUNK_LINES` lines at a time — every line of a chunk is checked before anything
//! of it is applied. Applying is idempotent: an export's records go in only where their
//! key is free, counter operations only where their id is new, and another service's
//! totals once per chunk (its key claimed in the same D1 transaction). So a bad line
//! stops the import with its number and how many lines went in before it, and the same
//! file sent again — corrected, or after an interruption — adds only what is missing.
//! `?dry_run=1` checks the whole file and changes nothing. A file too large for one
//! request goes in parts: each part repeats the header line, and `?from=N` says which
//! data line its first is (the CLI does this).

use crate::domain::counter::{CounterMeta, CounterState};
use crate::domain::crypto::{hex, sha256};
use crate::domain::ids::{CounterId, TenantId};
use crate::domain::import_formats::{self, Format, Line, Tallies};
use crate::domain::page::PageId;
use crate::domain::transfer::{self, Record, CHUNK_LINES, MAX_LINE_BYTES};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::context::Ctx;
use crate::objects::counter::InitRecord;
use crate::objects::counter_protocol::CounterCall;
use crate::objects::page_protocol::PageCall;
use crate::platform::{now_ms, random_bytes};
use crate::store::{self, counters, tenants, transfer as stored};
use futures_util::StreamExt;
use serde_json::{json, Value};
use worker::{D1Database, Env, Response};

/// Data lines one request may carry: a larger file goes in parts (`?from=`).
pub const MAX_REQUEST_LINES: u64 = 100_000;

pub async fn import(ctx: &mut Ctx<'_>, tenant: TenantId) -> ApiResult<Response> {
    let dry_run = match ctx.query("dry_run")?.as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => return Err(ApiError::InvalidParameter("dry_run must be 0 or 1".into())),
    };
    let from = match ctx.query("from")? {
        None => 1,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1 && (n - 1) % CHUNK_LINES as u64 == 0)
            .ok_or_else(|| {
                ApiError::InvalidParameter(format!(
                    "from must be 1 plus a multiple of {CHUNK_LINES} (where a chunk begins)"
                ))
            })?,
    };
    let source = match ctx.query("source")? {
        Some(s) if s.is_empty() || s.len() > 100 || s.chars().any(char::is_control) => {
            return Err(ApiError::InvalidParameter(
                "source must be 1 to 100 characters".into(),
            ))
        }
        other => other,
    };
    let db = store::database(ctx.env)?;
    let existing = tenants::find(&db, &tenant).await?;
    let mut body = ctx.req.stream().or_internal("reading an import")?;
    let mut reader = LineReader::default();
    let first = match reader.next(&mut body).await {
        Ok(Some(line)) => line.trim_start_matches('\u{feff}').to_string(),
        Ok(None) => return Err(ApiError::InvalidParameter("the body is empty".into())),
        Err(ApiError::InvalidParameter(reason)) => return Err(invalid(1, reason, 0)),
        Err(e) => return Err(e),
    };
    let (format, columns) =
        import_formats::detect(&first).map_err(|reason| invalid(1, reason, 0))?;
    let header_lines = u64::from(format.has_header());
    let mut export_key = None;
    if format == Format::Edgecount {
        let header = transfer::parse_line(&first, true).map_err(|reason| invalid(1, reason, 0))?;
        if header.text("tenant") != tenant.to_string() {
            return Err(invalid(
                1,
                format!(
                    "this export is of tenant {}; import it at /tenants/{}/import",
                    header.text("tenant"),
                    header.text("tenant")
                ),
                0,
            ));
        }
        // An export goes into a tenant it makes: merged into one that has its own
        // counts, its visits' numbers would meet the tenant's own. Only the same export
        // may be sent again (to resume, or to see that nothing changes).
        let key = format!("export:{}", header.text("exported_at"));
        if existing.is_some() && !stored::made_by_export(&db, &tenant.to_string(), &key).await? {
            return Err(invalid(
                1,
                format!(
                    "tenant {tenant} already exists here, made otherwise than by importing this export; \
                     an export is imported into a deployment that does not have its tenant yet"
                ),
                0,
            ));
        }
        export_key = Some(key);
    } else if existing.is_none() {
        return Err(ApiError::TenantNotFound);
    }
    let mut run = Run {
        env: ctx.env,
        db,
        tenant: tenant.to_string(),
        format,
        columns,
        dry_run,
        count_bots: existing.is_some_and(|t| t.settings.count_bots),
        actor: ctx.actor().id(),
        source: source.unwrap_or_else(|| format.name().to_string()),
        header_lines,
        applied: from - 1,
        summary: Summary::default(),
        counter: None,
        complete: false,
        export_key,
    };
    let mut chunk: Vec<String> = Vec::with_capacity(CHUNK_LINES);
    if !format.has_header() {
        chunk.push(first);
    }
    loop {
        let line = reader.next(&mut body).await.map_err(|e| match e {
            ApiError::InvalidParameter(reason) => {
                invalid(run.line_of(chunk.len()), reason, run.applied)
            }
            other => other,
        })?;
        let Some(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        if run.applied + chunk.len() as u64 - (from - 1) >= MAX_REQUEST_LINES {
            return Err(invalid(
                run.line_of(chunk.len()),
                format!(
                    "a request may carry up to {MAX_REQUEST_LINES} data lines; send the rest with ?from={}",
                    run.applied + 1
                ),
                run.applied,
            ));
        }
        chunk.push(line);
        if chunk.len() == CHUNK_LINES {
            run.chunk(&chunk).await?;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        run.chunk(&chunk).await?;
    }
    let summary = &run.summary;
    // In the order a person reads it; every value is a number, a boolean or a word.
    let answer = format!(
        r#"{{"format":"{}","dry_run":{dry_run},"lines":{},"data_lines":{},"added":{},"unchanged":{},"skipped":{},"changed":{},"complete":{}}}"#,
        format.name(),
        run.applied + header_lines,
        run.applied,
        summary.added,
        summary.unchanged,
        summary.skipped,
        summary.added > 0,
        format != Format::Edgecount || run.complete,
    );
    crate::http::respond::json(200, answer).or_internal("answering an import")
}

fn invalid(line: u64, reason: String, applied: u64) -> ApiError {
    ApiError::InvalidImport {
        line,
        reason,
        applied,
    }
}

#[derive(Default)]
struct Summary {
    added: u64,
    unchanged: u64,
    skipped: u64,
}

/// One import request in progress.
struct Run<'a> {
    env: &'a Env,
    db: D1Database,
    tenant: String,
    format: Format,
    columns: Vec<String>,
    dry_run: bool,
    count_bots: bool,
    actor: String,
    source: String,
    header_lines: u64,
    /// Data lines of the file applied (or checked) so far.
    applied: u64,
    summary: Summary,
    /// The last counter line seen, for its operations in the chunks that follow.
    counter: Option<(String, String)>,
    /// An edgecount export's `end` line was seen.
    complete: bool,
    /// An edgecount export's claim on the tenant it makes (`export:` and its time).
    export_key: Option<String>,
}

impl Run<'_> {
    /// The file's line number of the `i`-th line of the chunk being read.
    fn line_of(&self, i: usize) -> u64 {
        self.applied + i as u64 + 1 + self.header_lines
    }

    async fn chunk(&mut self, lines: &[String]) -> ApiResult<()> {
        let result = match self.format {
            Format::Edgecount => self.edgecount(lines).await,
            _ => self.other(lines).await,
        };
        result.map_err(|(i, e)| match e {
            ApiError::InvalidParameter(reason) | ApiError::InvalidImport { reason, .. } => {
                invalid(self.line_of(i), reason, self.applied)
            }
            ApiError::CounterLabelExists => invalid(
                self.line_of(i),
                "a counter of another import has this label".into(),
                self.applied,
            ),
            other => other,
        })?;
        self.applied += lines.len() as u64;
        Ok(())
    }

    /// A chunk of an edgecount export: records into D1 by kind, operations into their
    /// counters' objects.
    async fn edgecount(&mut self, lines: &[String]) -> Result<(), (usize, ApiError)> {
        let mut records: Vec<Record> = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let record = transfer::parse_line(line, false)
                .map_err(|reason| (i, ApiError::InvalidParameter(reason)))?;
            let wrong_tenant = record.kind == transfer::TENANT && record.text("id") != self.tenant;
            if wrong_tenant {
                let reason = "a tenant record of another tenant than the header's".into();
                return Err((i, ApiError::InvalidParameter(reason)));
            }
            if record.kind == transfer::END {
                let before = self.applied + i as u64;
                if record.int("records") as u64 != before {
                    let reason = format!(
                        "the end line counts {} records but {before} came before it: the file was changed or cut",
                        record.int("records")
                    );
                    return Err((i, ApiError::InvalidParameter(reason)));
                }
                self.complete = true;
            }
            records.push(record);
        }
        if self.dry_run {
            self.summary.unchanged += lines.len() as u64;
            return Ok(());
        }
        // One JSON array per kind, of the lines as they came (`type` is ignored there).
        let mut arrays: Vec<(&'static str, String)> = Vec::new();
        let mut counter_ids = Vec::new();
        for (line, record) in lines.iter().zip(&records) {
            let kind = record.kind.name;
            if kind == "operation" || kind == "end" {
                continue;
            }
            if kind == "counter" {
                counter_ids.push(record.text("id").to_string());
            }
            let at = match arrays.iter().position(|(k, _)| *k == kind) {
                Some(at) => at,
                None => {
                    arrays.push((kind, String::from("[")));
                    arrays.len() - 1
                }
            };
            let array = &mut arrays[at].1;
            if array.len() > 1 {
                array.push(',');
            }
            array.push_str(line);
        }
        let at_first = |kind: &str| {
            records
                .iter()
                .position(|r| r.kind.name == kind)
                .unwrap_or(0)
        };
        let by_tenant = records.iter().any(|r| r.kind == transfer::TENANT);
        if !counter_ids.is_empty() {
            let ids = serde_json::to_string(&counter_ids).unwrap_or_default();
            let foreign = stored::foreign_counters(&self.db, &self.tenant, &ids)
                .await
                .map_err(|e| (0, e))?;
            if let Some(id) = foreign.first() {
                let i = records.iter().position(|r| r.text("id") == id).unwrap_or(0);
                let reason = format!("counter {id} belongs to another tenant here");
                return Err((i, ApiError::InvalidParameter(reason)));
            }
        }
        for (_, array) in &mut arrays {
            array.push(']');
        }
        // Counters reach D1 after their objects have them (below): a read in between
        // would have an object adopt D1's copy instead of the file's ledger.
        let (counters, others): (Vec<_>, Vec<_>) =
            arrays.into_iter().partition(|(kind, _)| *kind == "counter");
        let total = records
            .iter()
            .filter(|r| !matches!(r.kind.name, "operation" | "end"))
            .count() as u64;
        let mut added = 0;
        // The tenant goes first (the rest refer to it): the order of `IMPORTS`; with it,
        // the claim that this export made it.
        let mut statements =
            stored::import_statements(&self.db, &self.tenant, &others).map_err(|e| (0, e))?;
        let claim = match (&self.export_key, by_tenant) {
            (Some(key), true) => {
                let claim = stored::claim_export(&self.db, &self.tenant, key, now_ms())
                    .map_err(|e| (0, e))?;
                statements.insert(1, claim);
                Some(1)
            }
            _ => None,
        };
        if !statements.is_empty() {
            let mut changed = store::changed(&self.db, statements, "importing records")
                .await
                .map_err(|e| (at_first("tenant"), stored::import_failure(e)))?;
            // A claim is not a record.
            if let Some(at) = claim {
                changed.remove(at);
            }
            added += changed.iter().sum::<u64>();
        }
        // Operations, a counter's run at a time, in file order.
        let mut i = 0;
        while i < records.len() {
            match records[i].kind.name {
                "counter" => {
                    self.counter = Some((records[i].text("id").to_string(), lines[i].clone()));
                    i += 1;
                }
                "operation" => {
                    let counter = records[i].text("counter").to_string();
                    let start = i;
                    let mut ops = String::from("[");
                    while i < records.len()
                        && records[i].kind.name == "operation"
                        && records[i].text("counter") == counter
                    {
                        if ops.len() > 1 {
                            ops.push(',');
                        }
                        ops.push_str(&lines[i]);
                        i += 1;
                    }
                    ops.push(']');
                    let line = match &self.counter {
                        Some((id, line)) if *id == counter => line.clone(),
                        _ => self.counter_line(&counter).await.map_err(|e| (start, e))?,
                    };
                    let body = format!(r#"{{"counter":{line},"operations":{ops}}}"#);
                    self.counter_import(&counter, &body)
                        .await
                        .map_err(|e| (start, e))?;
                }
                _ => i += 1,
            }
        }
        if !counters.is_empty() {
            let statements =
                stored::import_statements(&self.db, &self.tenant, &counters).map_err(|e| (0, e))?;
            let changed = store::changed(&self.db, statements, "importing counters")
                .await
                .map_err(|e| (at_first("counter"), stored::import_failure(e)))?;
            added += changed.iter().sum::<u64>();
        }
        self.summary.added += added;
        self.summary.unchanged += total.saturating_sub(added);
        self.summary.unchanged += records.iter().filter(|r| r.kind.name == "end").count() as u64;
        Ok(())
    }

    /// A counter's line rebuilt from D1, for operations whose counter line was in an
    /// earlier part of the file.
    async fn counter_line(&self, counter: &str) -> ApiResult<String> {
        match counters::find(&self.db, counter).await? {
            Some((meta, state, _)) if meta.tenant_id == self.tenant => Ok(json!({
                "id": meta.counter_id,
                "label": meta.label,
                "value": state.value,
                "max_delta": meta.max_delta,
                "created_ms": meta.created_ms,
                "updated_ms": state.updated_ms,
            })
            .to_string()),
            _ => Err(ApiError::InvalidParameter(format!(
                "operations of counter {counter}, which neither this file nor this tenant has"
            ))),
        }
    }

    /// Hands operations to a counter's object; what it added and left goes into the
    /// summary.
    async fn counter_import(&mut self, counter: &str, body: &str) -> ApiResult<()> {
        let call = CounterCall::Import {
            tenant: TenantId::parse(&self.tenant)?,
        };
        let stub = self
            .env
            .durable_object("COUNTER")
            .and_then(|ns| ns.get_by_name(counter))
            .or_internal("reaching a counter object")?;
        let request = crate::platform::request(
            "POST",
            &format!("https://counter{}", call.path()),
            None,
            Some(body),
        )
        .or_internal("building a counter import")?;
        let mut answer = stub
            .fetch_with_request(request)
            .await
            .or_internal("importing into a counter")?;
        let status = answer.status_code();
        let text = answer
            .text()
            .await
            .or_internal("reading a counter's import")?;
        let parsed: Value = serde_json::from_str(&text).unwrap_or_default();
        match status {
            200 => {
                self.summary.added += parsed["added"].as_u64().unwrap_or(0);
                self.summary.unchanged += parsed["unchanged"].as_u64().unwrap_or(0);
                Ok(())
            }
            400 => Err(ApiError::InvalidParameter(
                parsed["errors"][0]["message"]
                    .as_str()
                    .unwrap_or("the counter refused these operations")
                    .to_string(),
            )),
            404 => Err(ApiError::InvalidParameter(format!(
                "counter {counter} belongs to another tenant here"
            ))),
            _ => Err(ApiError::Internal(format!(
                "a counter's import answered {status}: {text}"
            ))),
        }
    }

    /// A line's own key: the tenant, the format, its line number in the file and its text.
    fn line_key(&self, lines: &[String], i: usize) -> String {
        let material = format!(
            "{}\n{}\n{}\n{}",
            self.tenant,
            self.format.name(),
            self.line_of(i),
            lines[i]
        );
        hex(&sha256(material.as_bytes())[..16])
    }

    /// A chunk of another service's file, or of "start at N" lines.
    async fn other(&mut self, lines: &[String]) -> Result<(), (usize, ApiError)> {
        let mut parsed = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let line = import_formats::parse(self.format, &self.columns, line, self.count_bots)
                .map_err(|reason| (i, ApiError::InvalidParameter(reason)))?;
            parsed.push(line);
        }
        if self.dry_run {
            self.summary.unchanged += lines.len() as u64;
            return Ok(());
        }
        let index = (self.applied) / CHUNK_LINES as u64;
        let key = {
            let mut material = format!("{}\n{}\n{index}\n", self.tenant, self.format.name());
            for line in lines {
                material.push_str(line);
                material.push('\n');
            }
            hex(&sha256(material.as_bytes())[..16])
        };
        let now = now_ms();
        let mut tallies = Tallies::default();
        let mut site_days = Vec::new();
        // (page, count, key): a page's share of the chunk's tallies under the chunk's key,
        // or one start-at-N line under its own.
        let mut page_adds: Vec<(String, u64, String)> = Vec::new();
        let mut counter_counts = Vec::new();
        let mut skipped = 0;
        for (i, line) in parsed.into_iter().enumerate() {
            match line {
                Line::Visits(k, t) => tallies.add(k, t),
                Line::SiteVisitors { day, visitors } => site_days.push((day, visitors)),
                Line::PageCount { page, count } => {
                    page_adds.push((page, count, self.line_key(lines, i)))
                }
                Line::CounterCount { label, count } => counter_counts.push((i, label, count)),
                Line::Skipped => skipped += 1,
            }
        }
        self.summary.skipped += skipped;
        let tallied = !tallies.0.is_empty();
        if tallied {
            let mut rows = Vec::with_capacity(tallies.0.len());
            for ((page, day, hour, referrer, country, agent), t) in &tallies.0 {
                match page_adds.iter_mut().find(|(p, _, _)| p == page) {
                    Some((_, count, _)) => *count += t.counted,
                    None => page_adds.push((page.clone(), t.counted, key.clone())),
                }
                rows.push(json!([
                    page, day, hour, referrer, country, agent, t.visits, t.counted, t.uniques
                ]));
            }
            let rows = Value::Array(rows).to_string();
            let added = stored::add_tallies(&self.db, &self.tenant, &rows, &key, now)
                .await
                .map_err(|e| (0, e))?;
            let records = lines.len() as u64 - skipped;
            if added {
                self.summary.added += records;
            } else {
                self.summary.unchanged += records;
            }
        } else if !page_adds.is_empty() {
            let pages: Vec<&String> = page_adds.iter().map(|(page, _, _)| page).collect();
            let pages = serde_json::to_string(&pages).unwrap_or_default();
            let statement =
                stored::ensure_pages(&self.db, &self.tenant, &pages, now).map_err(|e| (0, e))?;
            self.db
                .batch(vec![statement])
                .await
                .or_internal("creating imported pages")
                .map_err(|e| (0, e))?;
        }
        // Counts go to the pages' objects, once per key.
        for (page, count, key) in &page_adds {
            let answer = self.page_add(page, *count, key).await.map_err(|e| (0, e))?;
            if !tallied {
                if answer {
                    self.summary.added += 1;
                } else {
                    self.summary.unchanged += 1;
                }
            }
        }
        if !site_days.is_empty() {
            let days = serde_json::to_string(&site_days).unwrap_or_default();
            let statement =
                stored::site_visitors(&self.db, &self.tenant, &days).map_err(|e| (0, e))?;
            let changed = store::changed(&self.db, vec![statement], "importing site visitors")
                .await
                .map_err(|e| (0, e))?;
            self.summary.added += changed.iter().sum::<u64>();
        }
        for (i, label, count) in counter_counts {
            let counter = self.counter_for(&label).await.map_err(|e| (i, e))?;
            // The operation's id comes from the line and its place in the file: the same
            // line is the same operation, however often it is sent and whatever else in
            // the file was corrected meanwhile.
            let id = op_id(&self.line_key(lines, i));
            let op = json!({
                "id": id, "kind": "import", "delta": count, "value_after": null,
                "actor": self.actor, "created_ms": now, "completed_ms": now,
                "metadata": {"source": self.source, "line": self.line_of(i)},
            });
            let body = json!({"counter": null, "operations": [op]}).to_string();
            self.counter_import(&counter, &body)
                .await
                .map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// Adds an import's count to a page through its object, once per key.
    async fn page_add(&self, page: &str, count: u64, key: &str) -> ApiResult<bool> {
        let call = PageCall::Add {
            tenant: self.tenant.clone(),
            page: PageId::new(page.to_string())?.as_str().to_string(),
            count,
            key: key.to_string(),
        };
        let mut answer = crate::routes::pages::call_page(self.env, &call).await?;
        let text = answer.text().await.or_internal("reading a page's import")?;
        let parsed: Value = serde_json::from_str(&text).unwrap_or_default();
        Ok(parsed["added"].as_bool().unwrap_or(false))
    }

    /// The counter with this label, made (at 0) if the tenant has none.
    async fn counter_for(&self, label: &str) -> ApiResult<String> {
        if let Some(id) = stored::counter_by_label(&self.db, &self.tenant, label).await? {
            return Ok(id);
        }
        let now = now_ms();
        let record = InitRecord {
            meta: CounterMeta {
                counter_id: CounterId::generate(now, random_bytes()?).to_string(),
                tenant_id: self.tenant.clone(),
                label: Some(label.to_string()),
                max_delta: crate::domain::counter::DEFAULT_MAX_DELTA,
                created_ms: now,
            },
            state: CounterState {
                value: 0,
                version: 0,
                updated_ms: now,
            },
            actor: Some(self.actor.clone()),
        };
        let insert = counters::insert(&self.db, &record.meta, &record.state, &self.actor)?;
        if let Err(e) = self.db.batch(vec![insert]).await {
            // Made meanwhile by another request: use that one.
            return match stored::counter_by_label(&self.db, &self.tenant, label).await? {
                Some(id) => Ok(id),
                None => Err(ApiError::Internal(format!("creating a counter: {e}"))),
            };
        }
        if let Err(e) = crate::routes::counters::init_object(self.env, &record).await {
            crate::http::log::failure("counter init deferred to first use", &e);
        }
        Ok(record.meta.counter_id)
    }
}

/// A UUID (version 8, RFC 9562) from a line's key.
fn op_id(key: &str) -> String {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&sha256(key.as_bytes())[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

/// Lines from a streamed body, each at most `MAX_LINE_BYTES` long.
#[derive(Default)]
struct LineReader {
    buffer: Vec<u8>,
    /// Where the next line starts in `buffer`.
    start: usize,
    done: bool,
}

impl LineReader {
    async fn next(&mut self, body: &mut worker::ByteStream) -> ApiResult<Option<String>> {
        loop {
            let rest = &self.buffer[self.start..];
            let newline = rest.iter().position(|b| *b == b'\n');
            if newline.unwrap_or(rest.len()) > MAX_LINE_BYTES {
                return Err(ApiError::InvalidParameter(format!(
                    "the line is longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            if let Some(end) = newline {
                let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
                let line = text(line)?;
                self.start += end + 1;
                return Ok(Some(line));
            }
            if self.done {
                if rest.is_empty() {
                    return Ok(None);
                }
                let line = text(rest)?;
                self.start = self.buffer.len();
                return Ok(Some(line));
            }
            // Only the unfinished line is kept and moved.
            self.buffer.drain(..self.start);
            self.start = 0;
            match body.next().await {
                Some(chunk) => self
                    .buffer
                    .extend_from_slice(&chunk.or_internal("reading an import")?),
                None => self.done = true,
            }
        }
    }
}

fn text(bytes: &[u8]) -> ApiResult<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::InvalidParameter("the line is not UTF-8".into()))
}
