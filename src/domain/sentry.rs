//! Error reports in Sentry's envelope format: the DSN, the event, and the envelope that
//! carries it. No Sentry SDK runs on wasm32 Workers, and edgecount needs one kind of
//! item (an error event), so this is the wire format alone; the edge layer posts it.
//!
//! What an event may hold is fixed here: the error's message, where it happened (route
//! or job), the request id and tenant id, release and environment. Never a key, an
//! address or a user agent: nothing from a request's headers reaches an `Event`.

/// Where reports go, parsed from `SENTRY_DSN`:
/// `{scheme}://{public_key}[:{secret}]@{host}[/{path}]/{project_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    scheme: String,
    public_key: String,
    host: String,
    path: String,
    project_id: String,
}

/// A DSN longer than this is not one (Sentry's are about 100 characters).
const MAX_DSN_BYTES: usize = 512;

impl Dsn {
    pub fn parse(text: &str) -> Result<Dsn, String> {
        let text = text.trim();
        let bad = |why: &str| format!("SENTRY_DSN is not a Sentry DSN: {why}");
        if text.len() > MAX_DSN_BYTES {
            return Err(bad("too long"));
        }
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if scheme != "https" && scheme != "http" {
            return Err(bad("the scheme is not http or https"));
        }
        let (credentials, location) = rest.split_once('@').ok_or_else(|| bad("no key"))?;
        let public_key = credentials.split(':').next().unwrap_or_default();
        let (address, project_id) = location.rsplit_once('/').ok_or_else(|| bad("no project"))?;
        let (host, path) = match address.split_once('/') {
            Some((host, path)) => (host, format!("/{path}")),
            None => (address, String::new()),
        };
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
        };
        if !plain(public_key) || !plain(host) {
            return Err(bad("the key or host has characters a DSN does not"));
        }
        if project_id.is_empty() || !project_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the project id is not a number"));
        }
        if path.contains(['?', '#', '@']) {
            return Err(bad("the path has a query or fragment"));
        }
        Ok(Dsn {
            scheme: scheme.into(),
            public_key: public_key.into(),
            host: host.into(),
            path,
            project_id: project_id.into(),
        })
    }

    /// Where envelopes are posted.
    pub fn envelope_url(&self) -> String {
        let Dsn {
            scheme,
            host,
            path,
            project_id,
            ..
        } = self;
        format!("{scheme}://{host}{path}/api/{project_id}/envelope/")
    }

    /// The `X-Sentry-Auth` header: the public key only (a DSN's secret part is
    /// deprecated and never sent).
    pub fn auth_header(&self, client: &str) -> String {
        format!(
            "Sentry sentry_version=7, sentry_client={client}, sentry_key={}",
            self.public_key
        )
    }
}

/// What failed: a request answered 5xx, a flush that keeps failing, a cron job, a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Flush,
    Job,
    Panic,
}

impl Kind {
    /// Its tag, Sentry level and exception type.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Request => ("request", "error", "InternalError"),
            Kind::Flush => ("flush", "error", "FlushFailed"),
            Kind::Job => ("job", "error", "JobFailed"),
            Kind::Panic => ("panic", "fatal", "Panic"),
        }
    }
}

/// One report. `context` names where it happened: a route pattern, a job, an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub context: String,
    pub message: String,
    pub request_id: Option<String>,
    pub tenant_id: Option<String>,
}

/// Who sends, and as what.
pub struct Sender<'a> {
    pub dsn: &'a Dsn,
    /// The package version: `edgecount@{release}`.
    pub release: &'a str,
    pub environment: &'a str,
}

/// A message longer than this is cut: an error's text is a line, not a document.
const MAX_MESSAGE_CHARS: usize = 2_000;

impl Sender<'_> {
    /// The envelope for `event`, `event_id` 32 lowercase hex digits, `now_ms` the clock.
    /// Written as text around JSON-escaped values: the shape is fixed, and this keeps the
    /// transport small in the bundle.
    pub fn envelope(&self, event: &Event, event_id: &str, now_ms: u64) -> String {
        let text = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let sent_at = super::time::rfc3339(now_ms);
        let message: String = event.message.chars().take(MAX_MESSAGE_CHARS).collect();
        let message = text(&message);
        let context = text(&event.context);
        let (kind, level, exception) = event.kind.names();
        let mut tags = format!(r#"{{"kind":"{kind}","context":{context}"#);
        for (name, value) in [
            ("request_id", &event.request_id),
            ("tenant_id", &event.tenant_id),
        ] {
            if let Some(value) = value {
                tags.push_str(&format!(r#","{name}":{}"#, text(value)));
            }
        }
        let release = text(self.release);
        let environment = text(self.environment);
        let payload = format!(
            r#"{{"event_id":"{event_id}","timestamp":"{sent_at}","platform":"native","level":"{level}","logger":"edgecount","release":{edgecount_release},"environment":{environment},"transaction":{context},"message":{{"formatted":{message}}},"exception":{{"values":[{{"type":"{exception}","value":{message}}}]}},"tags":{tags}}},"sdk":{{"name":"edgecount","version":{release}}}}}"#,
            edgecount_release = text(&format!("edgecount@{}", self.release)),
        );
        let length = payload.len();
        format!(
            "{{\"event_id\":\"{event_id}\",\"sent_at\":\"{sent_at}\"}}\n{{\"type\":\"event\",\"length\":{length},\"content_type\":\"application/json\"}}\n{payload}\n"
        )
    }
}

/// Reports an isolate may send per minute: an outage that fails every request must not
/// become one outbound request per request (Sentry would drop them anyway, and each is
/// a subrequest). A panic always goes.
pub const REPORTS_PER_MINUTE: u32 = 20;

/// A fixed one-minute window of reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct Throttle {
    minute: u64,
    sent: u32,
}

impl Throttle {
    /// Whether a report may go at `now_ms`, counting it if so.
    pub fn admit(&mut self, now_ms: u64) -> bool {
        let minute = now_ms / 60_000;
        if minute != self.minute {
            *self = Throttle { minute, sent: 0 };
        }
        self.sent < REPORTS_PER_MINUTE && {
            self.sent += 1;
            true
        }
    }
}

/// What of a panic's message may leave: where it happened, and its text with anything
/// that may be data taken out — a quoted value that is not a Rust name (a string being
/// sliced, say) becomes `…`, and an unwrapped error's value (after "value: ") is cut —
/// at most 300 characters.
pub fn panic_summary(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find('`') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('`') else {
            rest = "";
            break;
        };
        let quoted = &after[..close];
        let code_like = quoted.len() <= 40
            && quoted
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_:<>()".contains(c));
        out.push('`');
        out.push_str(if code_like { quoted } else { "…" });
        out.push('`');
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if let Some(at) = out.find("value: ") {
        out.truncate(at + "value:".len());
        out.push_str(" …");
    }
    out.chars().take(300).collect()
}

/// The event id Sentry expects: a UUID's 32 hex digits, no hyphens.
pub fn event_id(uuid: &uuid::Uuid) -> String {
    uuid.simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_dsn_names_its_envelope_endpoint_and_key() {
        let dsn = Dsn::parse("https://abc123@o42.ingest.sentry.io/4501").unwrap();
        assert_eq!(
            dsn.envelope_url(),
            "https://o42.ingest.sentry.io/api/4501/envelope/"
        );
        assert_eq!(
            dsn.auth_header("edgecount/1.0.0"),
            "Sentry sentry_version=7, sentry_client=edgecount/1.0.0, sentry_key=abc123"
        );
        // A self-hosted Sentry under a path, a port, and the deprecated secret part.
        let dsn = Dsn::parse(" http://pub:secret@127.0.0.1:9000/sentry/7\n").unwrap();
        assert_eq!(
            dsn.envelope_url(),
            "http://127.0.0.1:9000/sentry/api/7/envelope/"
        );
        assert!(!dsn.auth_header("x").contains("secret"));
    }

    #[test]
    fn what_is_not_a_dsn_is_refused() {
        for bad in [
            "",
            "sentry.io/1",
            "ftp://k@sentry.io/1",
            "https://sentry.io/1",
            "https://k@sentry.io",
            "https://k@sentry.io/abc",
            "https://k@sentry.io/1?x=1",
            "https://k y@sentry.io/1",
            "https://@sentry.io/1",
        ] {
            assert!(Dsn::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Dsn::parse(&format!("https://k@{}.io/1", "a".repeat(600))).is_err());
    }

    #[test]
    fn an_envelope_is_a_header_an_item_header_and_the_event() {
        let dsn = Dsn::parse("https://k@sentry.example/3").unwrap();
        let sender = Sender {
            dsn: &dsn,
            release: "1.2.3",
            environment: "production",
        };
        let event = Event {
            kind: Kind::Request,
            context: "/tenants/{tenant_id}".into(),
            message: "D1: no such table".into(),
            request_id: Some("ray-1".into()),
            tenant_id: Some("t-1".into()),
        };
        let id = "0123456789abcdef0123456789abcdef";
        let text = sender.envelope(&event, id, 1_700_000_000_000);
        let lines: Vec<&str> = text.trim_end().split('\n').collect();
        assert_eq!(lines.len(), 3);
        let header: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(header["event_id"], id);
        assert_eq!(header["sent_at"], "2023-11-14T22:13:20.000Z");
        let item: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(item["type"], "event");
        assert_eq!(item["length"], lines[2].len());
        let payload: Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(payload["level"], "error");
        assert_eq!(payload["release"], "edgecount@1.2.3");
        assert_eq!(payload["environment"], "production");
        assert_eq!(payload["message"]["formatted"], "D1: no such table");
        assert_eq!(payload["tags"]["request_id"], "ray-1");
        assert_eq!(payload["tags"]["tenant_id"], "t-1");
        assert_eq!(payload["tags"]["context"], "/tenants/{tenant_id}");
        assert_eq!(payload["exception"]["values"][0]["type"], "InternalError");
    }

    #[test]
    fn panics_are_fatal_and_long_messages_are_cut() {
        let dsn = Dsn::parse("https://k@sentry.example/3").unwrap();
        let sender = Sender {
            dsn: &dsn,
            release: "1",
            environment: "e",
        };
        let event = Event {
            kind: Kind::Panic,
            context: "panic".into(),
            message: "é".repeat(5_000),
            request_id: None,
            tenant_id: None,
        };
        let text = sender.envelope(&event, "0".repeat(32).as_str(), 0);
        let payload: Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
        assert_eq!(payload["level"], "fatal");
        assert_eq!(
            payload["message"]["formatted"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            MAX_MESSAGE_CHARS
        );
        assert!(payload["tags"].get("request_id").is_none());
    }

    #[test]
    fn quotes_newlines_and_any_text_stay_valid_json() {
        let dsn = Dsn::parse("https://k@sentry.example/3").unwrap();
        let sender = Sender {
            dsn: &dsn,
            release: "1\"2",
            environment: "a\\b",
        };
        let nasty = "say \"hi\"\n\tback\\slash \u{0} é 🎉 }]\"";
        let event = Event {
            kind: Kind::Job,
            context: nasty.into(),
            message: nasty.into(),
            request_id: Some(nasty.into()),
            tenant_id: None,
        };
        let text = sender.envelope(&event, &"a".repeat(32), 0);
        let lines: Vec<&str> = text.trim_end().split('\n').collect();
        assert_eq!(
            lines.len(),
            3,
            "escaped newlines stay inside the payload line"
        );
        let item: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(item["length"], lines[2].len());
        let payload: Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(payload["message"]["formatted"], nasty);
        assert_eq!(payload["transaction"], nasty);
        assert_eq!(payload["tags"]["request_id"], nasty);
        assert_eq!(payload["tags"]["kind"], "job");
        assert_eq!(payload["release"], "edgecount@1\"2");
        assert_eq!(payload["environment"], "a\\b");
    }

    #[test]
    fn an_isolate_sends_at_most_20_reports_a_minute() {
        let mut throttle = Throttle::default();
        let start = 1_700_000_000_000 / 60_000 * 60_000;
        let sent = (0..100).filter(|i| throttle.admit(start + i * 100)).count();
        assert_eq!(sent, 20);
        assert!(
            throttle.admit(start + 60_000),
            "the next minute starts over"
        );
    }

    #[test]
    fn a_panic_keeps_where_and_what_but_no_data() {
        let plain = "panicked at src/http/app.rs:112:9:\nEDGECOUNT_FAULT=panic: a deliberate panic";
        assert_eq!(panic_summary(plain), plain);
        let sliced = "panicked at src/a.rs:1:2:\nbyte index 3 is not a char boundary; it is inside 'é' (bytes 2..4) of `Mozilla/5.0 (X11) 203.0.113.9`";
        let summary = panic_summary(sliced);
        assert!(summary.ends_with("of `…`"), "{summary}");
        assert!(!summary.contains("Mozilla") && !summary.contains("203.0"));
        let unwrapped = "panicked at src/b.rs:3:4:\ncalled `Result::unwrap()` on an `Err` value: Invalid(\"key ck_secret\")";
        let summary = panic_summary(unwrapped);
        assert!(
            summary.contains("`Result::unwrap()` on an `Err` value: …"),
            "{summary}"
        );
        assert!(!summary.contains("ck_secret"));
        assert_eq!(panic_summary(&"x".repeat(1_000)).len(), 300);
        assert_eq!(panic_summary("unclosed `quote 1.2.3.4"), "unclosed ");
    }

    #[test]
    fn event_ids_are_32_hex_digits() {
        let id = event_id(&crate::domain::ids::uuid_v7(1, [7; 10]));
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
