//! The export format, `edgecount-export` version 1 (docs/export-format.md): one JSON
//! object per line, a header first, an `end` line last. Each record says its `type` and
//! carries every field it needs (an operation names its counter, a visit its page), so
//! any run of lines can be applied on its own — which is what makes an import resumable
//! in chunks. This module checks a line against the format, field by field, with the
//! limits the service itself keeps; `docs/export-format.schema.json` says the same for
//! other tools, and a test holds the two together.

use crate::domain::counter::{MAX_LABEL_CHARS, MAX_SAFE};
use crate::domain::input::MAX_ALLOWED_ORIGINS;
use crate::domain::page::MAX_PAGE_ID_BYTES;
use serde_json::{Map, Value};

pub const FORMAT: &str = "edgecount-export";
pub const VERSION: i64 = 1;

/// Lines checked, then applied, together: an import's unit of work.
pub const CHUNK_LINES: usize = 1_000;
/// The longest line any record can need (a page id, a label and metadata at their limits).
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// An operation's metadata, as JSON text.
pub const MAX_METADATA_BYTES: usize = 4096;

/// What one field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// An integer in `[min, max]`.
    Int(i64, i64),
    /// `null` or an integer in `[min, max]`.
    OptInt(i64, i64),
    Bool,
    /// A UUID in its hyphenated form.
    Uuid,
    /// Text of 1 to `n` characters without control characters.
    Text(usize),
    /// `null` or `Text(n)`.
    OptText(usize),
    /// A page id (1 to 512 bytes, no control characters).
    Page,
    /// A page id or `""`: a rollup of the whole tenant.
    PageOrTenant,
    /// A rollup's key: up to 512 bytes without control characters, `""` for unknown.
    Key,
    /// `null` or a list of up to 20 origins.
    Origins,
    /// `null` or a JSON object of up to 4 KiB.
    Metadata,
    /// One of a fixed set of words.
    OneOf(&'static [&'static str]),
}

const MS: Field = Field::Int(0, MAX_SAFE);
const COUNT: Field = Field::Int(0, MAX_SAFE);
const VALUE: Field = Field::Int(-MAX_SAFE, MAX_SAFE);
/// A set may move a value across the whole range.
const DELTA: Field = Field::Int(-2 * MAX_SAFE, 2 * MAX_SAFE);
/// Days since 1970-01-01, to the year 9999.
const DAY: Field = Field::Int(0, 2_932_896);

pub const OPERATION_KINDS: &[&str] = &[
    "initial_value",
    "increment",
    "set_adjustment",
    "import",
    "baseline",
];
pub const AGENTS: &[&str] = &["browser", "bot", "proxy", "other"];

/// A kind of record: its `type` and its fields (every one required, no others allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub name: &'static str,
    pub fields: &'static [(&'static str, Field)],
}

pub const HEADER: Kind = Kind {
    name: "header",
    fields: &[
        ("format", Field::OneOf(&[FORMAT])),
        ("version", Field::Int(1, 1)),
        ("tenant", Field::Uuid),
        ("exported_at", Field::Text(40)),
        ("visits", Field::Bool),
    ],
};

pub const TENANT: Kind = Kind {
    name: "tenant",
    fields: &[
        ("id", Field::Uuid),
        ("label", Field::Text(MAX_LABEL_CHARS)),
        ("created_ms", MS),
        ("updated_ms", MS),
        ("page_auto_create", Field::Bool),
        ("count_bots", Field::Bool),
        ("respect_dnt", Field::Bool),
        ("allowed_origins", Field::Origins),
    ],
};

pub const COUNTER: Kind = Kind {
    name: "counter",
    fields: &[
        ("id", Field::Uuid),
        ("label", Field::OptText(MAX_LABEL_CHARS)),
        ("value", VALUE),
        ("max_delta", Field::Int(1, MAX_SAFE)),
        ("created_ms", MS),
        ("updated_ms", MS),
    ],
};

pub const OPERATION: Kind = Kind {
    name: "operation",
    fields: &[
        ("counter", Field::Uuid),
        ("id", Field::Uuid),
        ("kind", Field::OneOf(OPERATION_KINDS)),
        ("delta", DELTA),
        ("value_after", VALUE),
        ("actor", Field::Text(64)),
        ("created_ms", MS),
        ("completed_ms", MS),
        ("metadata", Field::Metadata),
    ],
};

pub const PAGE: Kind = Kind {
    name: "page",
    fields: &[
        ("page", Field::Page),
        ("count", COUNT),
        ("seq", COUNT),
        ("rolled_seq", COUNT),
        ("created_ms", MS),
        ("updated_ms", MS),
    ],
};

pub const PAGE_DAY: Kind = Kind {
    name: "page_day",
    fields: &[
        ("page", Field::Page),
        ("day", DAY),
        ("visits", COUNT),
        ("uniques", COUNT),
    ],
};

pub const SERIES: Kind = Kind {
    name: "series",
    fields: &[
        ("page", Field::PageOrTenant),
        ("unit", Field::Int(0, 1)),
        ("start", Field::Int(0, 2_932_896 * 24)),
        ("visits", COUNT),
        ("counted", COUNT),
        ("bots", COUNT),
        ("uniques", COUNT),
        ("sampled", Field::OptInt(0, MAX_SAFE)),
        ("level", Field::Int(0, 52)),
    ],
};

pub const TOP: Kind = Kind {
    name: "top",
    fields: &[
        ("page", Field::PageOrTenant),
        ("dim", Field::Int(0, 3)),
        ("level", Field::Int(0, 8)),
        ("start", DAY),
        ("key", Field::Key),
        ("visits", COUNT),
        ("counted", COUNT),
    ],
};

pub const VISIT: Kind = Kind {
    name: "visit",
    fields: &[
        ("page", Field::Page),
        ("seq", Field::Int(1, MAX_SAFE)),
        ("ts", MS),
        ("referrer_host", Field::OptText(255)),
        ("country", Field::OptText(8)),
        ("agent", Field::OneOf(AGENTS)),
        ("counted", Field::Int(0, 1)),
        ("unique", Field::Int(0, 1)),
    ],
};

pub const END: Kind = Kind {
    name: "end",
    fields: &[("records", COUNT)],
};

/// Every record kind after the header, in the order an export writes them.
pub const KINDS: [Kind; 9] = [
    TENANT, COUNTER, OPERATION, PAGE, PAGE_DAY, SERIES, TOP, VISIT, END,
];

/// A line that passed: its kind and its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub kind: Kind,
    pub fields: Map<String, Value>,
}

impl Record {
    pub fn text(&self, field: &str) -> &str {
        self.fields.get(field).and_then(Value::as_str).unwrap_or("")
    }

    pub fn int(&self, field: &str) -> i64 {
        self.fields.get(field).and_then(Value::as_i64).unwrap_or(0)
    }
}

/// Parses and checks one line: the header when `header` is true, else a record.
pub fn parse_line(line: &str, header: bool) -> Result<Record, String> {
    if line.len() > MAX_LINE_BYTES {
        return Err(format!("a line is longer than {MAX_LINE_BYTES} bytes"));
    }
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let Value::Object(mut fields) = value else {
        return Err("not a JSON object".into());
    };
    let kind = if header {
        HEADER
    } else {
        let name = fields.remove("type");
        let name = name.as_ref().and_then(Value::as_str).unwrap_or("");
        KINDS
            .into_iter()
            .find(|k| k.name == name)
            .ok_or_else(|| format!("unknown record type {name:?}"))?
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !kind.fields.iter().any(|(f, _)| f == k))
    {
        return Err(format!("{}: unknown field {unknown:?}", kind.name));
    }
    for (name, field) in kind.fields {
        let value = fields.get(*name).unwrap_or(&Value::Null);
        if !fields.contains_key(*name) || !fits(value, *field) {
            return Err(format!(
                "{}: {name} must be {}",
                kind.name,
                describe(*field)
            ));
        }
    }
    Ok(Record { kind, fields })
}

fn text_fits(value: &Value, max: usize) -> bool {
    value.as_str().is_some_and(|s| {
        !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
    })
}

fn fits(value: &Value, field: Field) -> bool {
    match field {
        Field::Int(min, max) => value.as_i64().is_some_and(|n| (min..=max).contains(&n)),
        Field::OptInt(min, max) => value.is_null() || fits(value, Field::Int(min, max)),
        Field::Bool => value.is_boolean(),
        // Lowercase, as the service writes ids: one id, one spelling.
        Field::Uuid => value.as_str().is_some_and(|s| {
            s.len() == 36
                && !s.bytes().any(|b| b.is_ascii_uppercase())
                && uuid::Uuid::try_parse(s).is_ok()
        }),
        Field::Text(max) => text_fits(value, max),
        Field::OptText(max) => value.is_null() || text_fits(value, max),
        Field::Page => value.as_str().is_some_and(|s| {
            !s.is_empty() && s.len() <= MAX_PAGE_ID_BYTES && !s.chars().any(char::is_control)
        }),
        Field::PageOrTenant => value.as_str() == Some("") || fits(value, Field::Page),
        Field::Key => value
            .as_str()
            .is_some_and(|s| s.len() <= MAX_PAGE_ID_BYTES && !s.chars().any(char::is_control)),
        Field::Origins => match value {
            Value::Null => true,
            Value::Array(items) => {
                items.len() <= MAX_ALLOWED_ORIGINS
                    && items.iter().all(|o| {
                        o.as_str()
                            .and_then(crate::domain::cors::parse_origin)
                            .is_some()
                    })
            }
            _ => false,
        },
        Field::Metadata => {
            value.is_null() || (value.is_object() && value.to_string().len() <= MAX_METADATA_BYTES)
        }
        Field::OneOf(words) => value.as_str().is_some_and(|s| words.contains(&s)),
    }
}

/// What a field must hold, for the error message.
pub fn describe(field: Field) -> String {
    match field {
        Field::Int(min, max) => format!("an integer from {min} to {max}"),
        Field::OptInt(min, max) => format!("null or an integer from {min} to {max}"),
        Field::Bool => "true or false".into(),
        Field::Uuid => "a UUID in lowercase".into(),
        Field::Text(n) => format!("text of 1 to {n} characters"),
        Field::OptText(n) => format!("null or text of 1 to {n} characters"),
        Field::Page => format!("a page id of 1 to {MAX_PAGE_ID_BYTES} bytes"),
        Field::PageOrTenant => "a page id, or \"\" for the whole tenant".into(),
        Field::Key => format!("text of up to {MAX_PAGE_ID_BYTES} bytes"),
        Field::Origins => {
            format!(
                "null or a list of up to {MAX_ALLOWED_ORIGINS} origins like https://blog.example"
            )
        }
        Field::Metadata => format!("null or a JSON object of up to {MAX_METADATA_BYTES} bytes"),
        Field::OneOf(words) => format!("one of {}", words.join(", ")),
    }
}

/// The code an operation kind is stored as (`domain::ledger::OperationKind::code`).
pub fn kind_code(name: &str) -> Option<i64> {
    OPERATION_KINDS
        .iter()
        .position(|k| *k == name)
        .map(|i| i as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ledger::OperationKind;

    const T: &str = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";

    #[test]
    fn a_header_and_each_kind_of_record_pass() {
        let header = format!(
            r#"{{"format":"edgecount-export","version":1,"tenant":"{T}","exported_at":"2026-01-01T00:00:00.000Z","visits":false}}"#
        );
        assert_eq!(parse_line(&header, true).unwrap().kind, HEADER);
        let lines = [
            format!(r#"{{"type":"tenant","id":"{T}","label":"blog","created_ms":1,"updated_ms":2,"page_auto_create":true,"count_bots":false,"respect_dnt":false,"allowed_origins":["https://blog.example"]}}"#),
            format!(r#"{{"type":"counter","id":"{T}","label":null,"value":-3,"max_delta":5,"created_ms":1,"updated_ms":2}}"#),
            format!(r#"{{"type":"operation","counter":"{T}","id":"{T}","kind":"import","delta":-3,"value_after":-3,"actor":"admin","created_ms":1,"completed_ms":1,"metadata":{{"source":"x"}}}}"#),
            r#"{"type":"page","page":"/a","count":3,"seq":4,"rolled_seq":4,"created_ms":1,"updated_ms":2}"#.into(),
            r#"{"type":"page_day","page":"/a","day":20000,"visits":3,"uniques":1}"#.into(),
            r#"{"type":"series","page":"","unit":1,"start":20000,"visits":3,"counted":3,"bots":0,"uniques":1,"sampled":null,"level":0}"#.into(),
            r#"{"type":"top","page":"","dim":1,"level":8,"start":19968,"key":"news.example","visits":3,"counted":3}"#.into(),
            r#"{"type":"visit","page":"/a","seq":1,"ts":5,"referrer_host":null,"country":"NL","agent":"bot","counted":0,"unique":0}"#.into(),
            r#"{"type":"end","records":8}"#.into(),
        ];
        for (line, kind) in lines.iter().zip(KINDS) {
            assert_eq!(parse_line(line, false).unwrap().kind, kind, "{line}");
        }
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let err = |line: &str| parse_line(line, false).unwrap_err();
        assert!(err("{").starts_with("not a JSON object"));
        assert_eq!(err("[1]"), "not a JSON object");
        assert_eq!(err(r#"{"type":"nope"}"#), "unknown record type \"nope\"");
        assert_eq!(
            err(r#"{"type":"end","records":1,"extra":2}"#),
            "end: unknown field \"extra\""
        );
        assert_eq!(
            err(r#"{"type":"end"}"#),
            "end: records must be an integer from 0 to 9007199254740991"
        );
        assert!(
            err(r#"{"type":"page_day","page":"/a","day":1,"visits":-1,"uniques":0}"#)
                .contains("visits must be")
        );
        assert!(
            err(r#"{"type":"page_day","page":"","day":1,"visits":1,"uniques":0}"#)
                .contains("page must be")
        );
        let long = format!(
            r#"{{"type":"end","records":1,"x":"{}"}}"#,
            "a".repeat(MAX_LINE_BYTES)
        );
        assert!(err(&long).contains("longer than"));
        let header = format!(
            r#"{{"format":"edgecount-export","version":2,"tenant":"{T}","exported_at":"x","visits":false}}"#
        );
        assert!(parse_line(&header, true).unwrap_err().contains("version"));
        let upper = format!(
            r#"{{"type":"operation","counter":"{}","id":"{T}","kind":"import","delta":1,"value_after":1,"actor":"admin","created_ms":1,"completed_ms":1,"metadata":null}}"#,
            T.to_uppercase()
        );
        assert!(err(&upper).contains("counter must be a UUID in lowercase"));
    }

    #[test]
    fn kind_codes_are_the_ledgers() {
        for name in OPERATION_KINDS {
            let code = kind_code(name).unwrap();
            assert_eq!(OperationKind::from_code(code).unwrap().name(), *name);
        }
        assert_eq!(kind_code("nope"), None);
    }

    /// The JSON Schema published for other tools says what this module enforces: the same
    /// record types, the same fields, each required, no others.
    #[test]
    fn the_published_schema_matches() {
        let schema: Value =
            serde_json::from_str(include_str!("../../docs/export-format.schema.json")).unwrap();
        let defs = schema["$defs"].as_object().unwrap();
        for kind in std::iter::once(HEADER).chain(KINDS) {
            let def = &defs[kind.name];
            let mut props: Vec<&str> = def["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{} in the schema", kind.name))
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "type")
                .collect();
            let mut ours: Vec<&str> = kind.fields.iter().map(|(f, _)| *f).collect();
            props.sort_unstable();
            ours.sort_unstable();
            assert_eq!(props, ours, "{}", kind.name);
            assert_eq!(def["additionalProperties"], false, "{}", kind.name);
            let required = def["required"].as_array().unwrap().len();
            let typed = usize::from(kind.name != "header");
            assert_eq!(required, ours.len() + typed, "{}", kind.name);
        }
    }
}
