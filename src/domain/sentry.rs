//! Error reports in Sentry's envelope format: the DSN, the event, and the envelope that
//! carries it. No Sentry SDK runs on wasm32 Workers, and edgecount needs one kind of
//! item (an error event), so this is the wire format alone; the edge layer posts it.
//!
//! What an event may hold is fixed here: the error's message, where it happened (route
//! or job), the request id and tenant id, release and environment. Never a key, an
//! address or a user agent: nothing from a request's headers reaches an `Event`.

use serde::Serialize;
use serde_json::{json, Value};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Request,
    Flush,
    Job,
    Panic,
}

impl Kind {
    fn level(self) -> &'static str {
        match self {
            Kind::Panic => "fatal",
            _ => "error",
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
    pub fn envelope(&self, event: &Event, event_id: &str, now_ms: u64) -> String {
        let sent_at = super::time::rfc3339(now_ms);
        let message: String = event.message.chars().take(MAX_MESSAGE_CHARS).collect();
        let mut tags = json!({"kind": event.kind, "context": event.context});
        if let Some(id) = &event.request_id {
            tags["request_id"] = id.as_str().into();
        }
        if let Some(id) = &event.tenant_id {
            tags["tenant_id"] = id.as_str().into();
        }
        let payload = json!({
            "event_id": event_id,
            "timestamp": sent_at,
            "platform": "native",
            "level": event.kind.level(),
            "logger": "edgecount",
            "release": format!("edgecount@{}", self.release),
            "environment": self.environment,
            "transaction": event.context,
            "message": {"formatted": message},
            "exception": {"values": [{"type": exception_type(event.kind), "value": message}]},
            "tags": tags,
            "sdk": {"name": "edgecount", "version": self.release},
        })
        .to_string();
        let header = json!({"event_id": event_id, "sent_at": sent_at});
        let item =
            json!({"type": "event", "length": payload.len(), "content_type": "application/json"});
        format!("{header}\n{item}\n{payload}\n")
    }
}

fn exception_type(kind: Kind) -> Value {
    match kind {
        Kind::Request => "InternalError",
        Kind::Flush => "FlushFailed",
        Kind::Job => "JobFailed",
        Kind::Panic => "Panic",
    }
    .into()
}

/// The event id Sentry expects: a UUID's 32 hex digits, no hyphens.
pub fn event_id(uuid: &uuid::Uuid) -> String {
    uuid.simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn event_ids_are_32_hex_digits() {
        let id = event_id(&crate::domain::ids::uuid_v7(1, [7; 10]));
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
