//! One JSON line per request, for `wrangler tail` and Logpush.

use serde::Serialize;

#[derive(Serialize)]
pub struct RequestLog<'a> {
    pub time: String,
    pub level: &'static str,
    pub request_id: &'a str,
    pub method: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RequestLog<'_> {
    pub fn emit(&self) {
        if let Ok(line) = serde_json::to_string(self) {
            if self.level == "error" {
                worker::console_error!("{line}");
            } else {
                worker::console_log!("{line}");
            }
        }
    }
}

/// A failure outside any request's answer (an alarm, a background step), as one JSON
/// line like the request log.
pub fn failure(context: &str, detail: &dyn std::fmt::Display) {
    let line = serde_json::json!({
        "time": crate::domain::time::rfc3339(crate::platform::now_ms()),
        "level": "error",
        "context": context,
        "error": detail.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
    });
    worker::console_error!("{line}");
}

/// A scheduled job's outcome, as one JSON line: its name and what it did (`fields`, a
/// JSON object).
pub fn job(name: &str, mut fields: serde_json::Value) {
    fields["time"] = crate::domain::time::rfc3339(crate::platform::now_ms()).into();
    fields["level"] = "info".into();
    fields["job"] = name.into();
    worker::console_log!("{fields}");
}
