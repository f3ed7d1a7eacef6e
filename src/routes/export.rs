//! `GET /tenants/{t}/export`: the tenant as NDJSON (`domain::transfer`), streamed. Each
//! piece is read when the reader asks for more — a page of D1 rows by primary key, or a
//! page of one counter's ledger from its object — so memory stays flat however large
//! the tenant. The daily backup (`jobs::backup`) writes the same stream to R2.

use crate::domain::ids::TenantId;
use crate::domain::time::rfc3339;
use crate::domain::transfer::{FORMAT, VERSION};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::context::Ctx;
use crate::objects::counter_protocol::CounterCall;
use crate::platform::now_ms;
use crate::store::{self, tenants, transfer};
use futures_util::Stream;
use std::collections::VecDeque;
use worker::{Env, Headers, Response};

pub async fn export(ctx: &mut Ctx<'_>, tenant: TenantId) -> ApiResult<Response> {
    let visits = match ctx.query("visits")?.as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => return Err(ApiError::InvalidParameter("visits must be 0 or 1".into())),
    };
    // An export reads every row of the tenant: a tenant key's exports are braked like
    // its other reads.
    crate::http::brake::check_read(ctx.env, &ctx.client).await?;
    let db = store::database(ctx.env)?;
    if tenants::find(&db, &tenant).await?.is_none() {
        return Err(ApiError::TenantNotFound);
    }
    let now = now_ms();
    let headers = Headers::new();
    let name = format!("edgecount-{tenant}-{}.ndjson", &rfc3339(now)[..10]);
    for (header, value) in [
        ("Content-Type", "application/x-ndjson; charset=utf-8"),
        ("Cache-Control", "no-store"),
        (
            "Content-Disposition",
            &format!("attachment; filename=\"{name}\""),
        ),
    ] {
        headers
            .set(header, value)
            .or_internal("answering an export")?;
    }
    let body = lines(ctx.env.clone(), tenant.to_string(), visits, now);
    Ok(Response::from_stream(body)
        .or_internal("answering an export")?
        .with_headers(headers))
}

/// The export as a stream of byte chunks, each whole lines. A failure ends the stream
/// with an error (the reader sees it cut short: no `end` line).
pub fn lines(
    env: Env,
    tenant: String,
    visits: bool,
    now: u64,
) -> impl Stream<Item = worker::Result<Vec<u8>>> + 'static {
    let export = Export {
        env,
        tenant,
        visits,
        now,
        step: Step::Header,
        records: 0,
    };
    futures_util::stream::unfold(export, |mut export| async move {
        match export.next().await {
            Ok(Some(text)) => Some((Ok(text.into_bytes()), export)),
            Ok(None) => None,
            Err(e) => {
                crate::http::log::failure("exporting", &e);
                export.step = Step::Done;
                Some((Err(worker::Error::RustError(e.to_string())), export))
            }
        }
    })
}

enum Step {
    Header,
    Tenant,
    /// Counters to export (the next ids, and the last id listed).
    Counters {
        queue: VecDeque<String>,
        after: String,
    },
    /// One counter's line and ledger, a page at a time.
    Ledger {
        queue: VecDeque<String>,
        after: String,
        counter: String,
        from: u64,
        upto: u64,
    },
    Section {
        index: usize,
        cursor: String,
    },
    End,
    Done,
}

struct Export {
    env: Env,
    tenant: String,
    visits: bool,
    now: u64,
    step: Step,
    records: u64,
}

impl Export {
    /// The next piece of text, or `None` at the end.
    async fn next(&mut self) -> ApiResult<Option<String>> {
        loop {
            let text = self.advance().await?;
            match text {
                Some(text) if text.is_empty() => continue,
                Some(text) => {
                    self.records += text.bytes().filter(|b| *b == b'\n').count() as u64;
                    return Ok(Some(text));
                }
                None => return Ok(None),
            }
        }
    }

    async fn advance(&mut self) -> ApiResult<Option<String>> {
        let db = store::database(&self.env)?;
        let step = std::mem::replace(&mut self.step, Step::Done);
        let (text, next) = match step {
            Step::Header => {
                // Written by hand so `format` comes first; every value is a UUID, a time
                // or a word (nothing to escape).
                let header = format!(
                    r#"{{"format":"{FORMAT}","version":{VERSION},"tenant":"{}","exported_at":"{}","visits":{}}}"#,
                    self.tenant,
                    rfc3339(self.now),
                    self.visits
                );
                self.step = Step::Tenant;
                return Ok(Some(format!("{header}\n")));
            }
            Step::Tenant => {
                let line = transfer::tenant_line(&db, &self.tenant)
                    .await?
                    .ok_or(ApiError::TenantNotFound)?;
                (
                    line + "\n",
                    Step::Counters {
                        queue: VecDeque::new(),
                        after: String::new(),
                    },
                )
            }
            Step::Counters { mut queue, after } => {
                if queue.is_empty() {
                    queue = transfer::counter_ids(&db, &self.tenant, &after)
                        .await?
                        .into();
                }
                let after = queue.back().cloned().unwrap_or(after);
                match queue.pop_front() {
                    Some(counter) => (
                        String::new(),
                        Step::Ledger {
                            queue,
                            after,
                            counter,
                            from: 0,
                            upto: 0,
                        },
                    ),
                    None => (
                        String::new(),
                        Step::Section {
                            index: 0,
                            cursor: transfer::SECTIONS[0].start.into(),
                        },
                    ),
                }
            }
            Step::Ledger {
                queue,
                after,
                counter,
                from,
                upto,
            } => {
                let (text, more) = self.ledger_page(&counter, from, upto).await?;
                let next = match more {
                    Some((from, upto)) => Step::Ledger {
                        queue,
                        after,
                        counter,
                        from,
                        upto,
                    },
                    None => Step::Counters { queue, after },
                };
                (text, next)
            }
            Step::Section { index, cursor } => {
                let Some(section) = transfer::SECTIONS.get(index) else {
                    self.step = Step::End;
                    return Ok(Some(String::new()));
                };
                let skip = section.visits && !self.visits;
                let (text, next_cursor) = if skip {
                    (String::new(), None)
                } else {
                    let (text, _, next) =
                        transfer::section_page(&db, section, &self.tenant, &cursor).await?;
                    (text, next)
                };
                let next = match next_cursor {
                    Some(cursor) => Step::Section { index, cursor },
                    None => Step::Section {
                        index: index + 1,
                        cursor: transfer::SECTIONS
                            .get(index + 1)
                            .map_or("", |s| s.start)
                            .into(),
                    },
                };
                (text, next)
            }
            // Every line so far but the header.
            Step::End => (
                format!("{{\"type\":\"end\",\"records\":{}}}\n", self.records - 1),
                Step::Done,
            ),
            Step::Done => return Ok(None),
        };
        self.step = next;
        Ok(Some(text))
    }

    /// A page of one counter's export from its object, and where the next starts.
    async fn ledger_page(
        &self,
        counter: &str,
        after: u64,
        upto: u64,
    ) -> ApiResult<(String, Option<(u64, u64)>)> {
        let call = CounterCall::Export {
            tenant: TenantId::parse(&self.tenant)?,
            after,
            upto,
        };
        let stub = self
            .env
            .durable_object("COUNTER")
            .and_then(|ns| ns.get_by_name(counter))
            .or_internal("reaching a counter object")?;
        let mut answer = stub
            .fetch_with_str(&format!("https://counter{}", call.path()))
            .await
            .or_internal("exporting a counter")?;
        let header = |name: &str| -> Option<u64> { answer.headers().get(name).ok()??.parse().ok() };
        let (next, upto) = (header("X-Next"), header("X-Upto").unwrap_or(upto));
        match answer.status_code() {
            200 => {}
            // Not under this tenant after all: nothing to export.
            404 => return Ok((String::new(), None)),
            status => {
                return Err(ApiError::Internal(format!(
                    "a counter's export answered {status}"
                )))
            }
        }
        let text = answer
            .text()
            .await
            .or_internal("reading a counter's export")?;
        Ok((text, next.map(|from| (from, upto))))
    }
}
