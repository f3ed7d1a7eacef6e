//! What an import may be, told from its first line, and how each other service's lines
//! become edgecount's: GoatCounter's CSV export (format version 2: one row per
//! pageview), Plausible's CSV export (`imported_pages`: a page's day; `imported_visitors`:
//! the site's day) and "start at N" lists (`{"page" or "counter", "count"}` lines, or CSV
//! with those columns). docs/export-format.md documents the mapping.

use crate::domain::counter::{check_label, MAX_SAFE};
use crate::domain::page::PageId;
use crate::domain::time::parse_rfc3339;
use crate::domain::visit::DAY_MS;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An edgecount export (`domain::transfer`).
    Edgecount,
    GoatCounter,
    PlausiblePages,
    PlausibleVisitors,
    /// "Start at N" lines: NDJSON (the first line is already a record) or CSV.
    Counts {
        csv: bool,
    },
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Edgecount => "edgecount",
            Format::GoatCounter => "goatcounter",
            Format::PlausiblePages => "plausible_pages",
            Format::PlausibleVisitors => "plausible_visitors",
            Format::Counts { .. } => "counts",
        }
    }

    /// Whether the first line is a header rather than a record.
    pub fn has_header(self) -> bool {
        !matches!(self, Format::Counts { csv: false })
    }
}

const UNRECOGNISED: &str = "not a file this service imports: expected an edgecount export, \
a GoatCounter CSV export (format version 2), Plausible's imported_pages or imported_visitors \
CSV, or page/counter and count lines";

/// The format of a file from its first line, and for CSV the columns it names.
pub fn detect(first: &str) -> Result<(Format, Vec<String>), String> {
    let first = first.trim_start_matches('\u{feff}');
    if first.starts_with('{') {
        let v: Value =
            serde_json::from_str(first).map_err(|e| format!("not a JSON object: {e}"))?;
        return match v.get("format") {
            Some(f) if f.as_str() == Some(crate::domain::transfer::FORMAT) => {
                match v.get("version").and_then(Value::as_i64) {
                    Some(crate::domain::transfer::VERSION) => Ok((Format::Edgecount, vec![])),
                    other => Err(format!(
                        "unknown format version {}: this service reads version {}",
                        other.map_or("(none)".into(), |n| n.to_string()),
                        crate::domain::transfer::VERSION
                    )),
                }
            }
            Some(other) => Err(format!("unknown format {other}")),
            None if v.get("count").is_some() => Ok((Format::Counts { csv: false }, vec![])),
            None => Err(UNRECOGNISED.into()),
        };
    }
    let columns: Vec<String> = csv_fields(first)
        .ok_or_else(|| UNRECOGNISED.to_string())?
        .into_iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let has = |name: &str| columns.iter().any(|c| c == name);
    match columns.first().map(String::as_str) {
        Some("2path") => return Ok((Format::GoatCounter, columns)),
        Some(c) if c.ends_with("path") && c.starts_with(|ch: char| ch.is_ascii_digit()) => {
            return Err(format!(
                "unknown GoatCounter format version {}: this service reads version 2",
                c.trim_end_matches("path")
            ))
        }
        _ => {}
    }
    let format = if has("date") && has("pageviews") && has("visitors") && has("page") {
        Format::PlausiblePages
    } else if has("date") && has("pageviews") && has("visitors") {
        Format::PlausibleVisitors
    } else if has("count") && (has("page") || has("counter")) {
        Format::Counts { csv: true }
    } else {
        return Err(UNRECOGNISED.into());
    };
    Ok((format, columns))
}

/// One CSV line's fields (RFC 4180: `"` quotes a field, `""` inside is a quote). `None`
/// when a quote is left open: a field with a line break in it is not something these
/// exports write where it matters, and refusing it is safer than guessing.
pub fn csv_fields(line: &str) -> Option<Vec<String>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => {
                quoted = true;
                at_start = false;
            }
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            (_, c) => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

/// A day's or an hour's visits of one page with one referrer, country and agent, as an
/// import adds them to the daily totals and the stats rollups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub visits: u64,
    pub counted: u64,
    pub uniques: u64,
}

/// What a tally is of: page, day, hour (`None`: the day's totals only), referrer host,
/// country, agent class.
pub type TallyKey = (
    String,
    u64,
    Option<u64>,
    Option<String>,
    Option<String>,
    &'static str,
);

/// Tallies of a chunk, in the order their keys first came. A list, not a map: a chunk
/// holds at most 1,000 lines, and a map type of its own cost the bundle more than the
/// search costs time.
#[derive(Debug, Default)]
pub struct Tallies(pub Vec<(TallyKey, Tally)>);

impl Tallies {
    pub fn add(&mut self, key: TallyKey, tally: Tally) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, t)) => {
                t.visits += tally.visits;
                t.counted += tally.counted;
                t.uniques += tally.uniques;
            }
            None => self.0.push((key, tally)),
        }
    }
}

/// A record of an other service's file, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Visits to add to a page's day (and hour).
    Visits(TallyKey, Tally),
    /// The site's visitors of a day.
    SiteVisitors { day: u64, visitors: u64 },
    /// "Start at N": add `count` to a page.
    PageCount { page: String, count: u64 },
    /// "Start at N": add `count` to the counter with this label (made if missing).
    CounterCount { label: String, count: i64 },
    /// A row with nothing to import (a GoatCounter event).
    Skipped,
}

/// Column `name` of a CSV row.
fn column<'a>(columns: &[String], row: &'a [String], name: &str) -> Result<&'a str, String> {
    columns
        .iter()
        .position(|c| c == name)
        .and_then(|i| row.get(i))
        .map(|s| s.trim())
        .ok_or_else(|| format!("the {name} column is missing"))
}

fn count(text: &str, name: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .ok()
        .filter(|n| *n <= MAX_SAFE as u64)
        .ok_or_else(|| format!("{name} must be a whole number from 0 to {MAX_SAFE}, not {text:?}"))
}

fn page_id(text: &str) -> Result<String, String> {
    PageId::new(text.to_string())
        .map(|p| p.as_str().to_string())
        .map_err(|e| e.message())
}

fn day(text: &str) -> Result<u64, String> {
    parse_rfc3339(text)
        .filter(|_| text.len() == 10)
        .map(|ms| ms / DAY_MS)
        .ok_or_else(|| format!("date must be YYYY-MM-DD, not {text:?}"))
}

/// Parses one line after the header. `count_bots` is the tenant's setting: a bot's
/// pageview counts only where the tenant counts bots.
pub fn parse(
    format: Format,
    columns: &[String],
    line: &str,
    count_bots: bool,
) -> Result<Line, String> {
    if let Format::Counts { csv: false } = format {
        return counts_record(line);
    }
    let row = csv_fields(line).ok_or("a quoted field is not closed")?;
    if row.len() != columns.len() {
        return Err(format!(
            "{} fields where the header has {}",
            row.len(),
            columns.len()
        ));
    }
    let col = |name| column(columns, &row, name);
    match format {
        Format::GoatCounter => {
            if matches!(col("event")?, "1" | "true" | "t") {
                return Ok(Line::Skipped);
            }
            let page = page_id(col("2path")?)?;
            let date = col("date")?;
            let ts = parse_rfc3339(date)
                .ok_or_else(|| format!("Date must be an RFC 3339 time, not {date:?}"))?;
            let bot = !matches!(col("bot")?, "" | "0");
            let first = matches!(col("firstvisit")?, "1" | "true" | "t");
            // A URL's host for an HTTP referrer; the generated names (Google, Email) and
            // campaigns are not hosts.
            let referrer = match col("referrer scheme")? {
                "h" => col("referrer")?
                    .split(['/', '?'])
                    .next()
                    .filter(|h| !h.is_empty() && h.len() <= 255)
                    .map(str::to_ascii_lowercase),
                _ => None,
            };
            let country = col("location")?
                .get(..2)
                .filter(|c| c.chars().all(|ch| ch.is_ascii_alphabetic()))
                .map(str::to_ascii_uppercase);
            let counted = !bot || count_bots;
            let key = (
                page,
                ts / DAY_MS,
                Some(ts / 3_600_000),
                referrer,
                country,
                if bot { "bot" } else { "browser" },
            );
            Ok(Line::Visits(
                key,
                Tally {
                    visits: 1,
                    counted: u64::from(counted),
                    uniques: u64::from(counted && first),
                },
            ))
        }
        Format::PlausiblePages => {
            let pageviews = count(col("pageviews")?, "pageviews")?;
            let visitors = count(col("visitors")?, "visitors")?;
            let key = (
                page_id(col("page")?)?,
                day(col("date")?)?,
                None,
                None,
                None,
                "browser",
            );
            Ok(Line::Visits(
                key,
                Tally {
                    visits: pageviews,
                    counted: pageviews,
                    uniques: visitors.min(pageviews),
                },
            ))
        }
        Format::PlausibleVisitors => Ok(Line::SiteVisitors {
            day: day(col("date")?)?,
            visitors: count(col("visitors")?, "visitors")?,
        }),
        Format::Counts { .. } => {
            let count = col("count")?;
            if columns.iter().any(|c| c == "page") {
                counted_page(col("page")?, count.parse().ok())
            } else {
                counted_counter(col("counter")?, count.parse().ok())
            }
        }
        Format::Edgecount => Err("not an edgecount record".into()),
    }
}

fn counted_page(page: &str, count: Option<u64>) -> Result<Line, String> {
    Ok(Line::PageCount {
        page: page_id(page)?,
        count: count
            .filter(|n| *n <= MAX_SAFE as u64)
            .ok_or_else(|| format!("count must be a whole number from 0 to {MAX_SAFE}"))?,
    })
}

fn counted_counter(label: &str, count: Option<i64>) -> Result<Line, String> {
    Ok(Line::CounterCount {
        label: check_label(label).map_err(|e| e.message())?,
        count: count
            .filter(|n| (-MAX_SAFE..=MAX_SAFE).contains(n))
            .ok_or_else(|| format!("count must be an integer from -{MAX_SAFE} to {MAX_SAFE}"))?,
    })
}

/// `{"page": "/a", "count": 12}` or `{"counter": "downloads", "count": 12}`.
fn counts_record(line: &str) -> Result<Line, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let Value::Object(map) = &v else {
        return Err("not a JSON object".into());
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !["page", "counter", "count"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown field {unknown:?}; expected page or counter, and count"
        ));
    }
    match (map.get("page"), map.get("counter")) {
        (Some(Value::String(p)), None) => counted_page(p, v["count"].as_u64()),
        (None, Some(Value::String(c))) => counted_counter(c, v["count"].as_i64()),
        _ => Err("a line needs either page or counter (text), and count".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOAT: &str = "2Path,Title,Event,UserAgent,Browser,System,Session,Bot,Referrer,Referrer scheme,Screen size,Location,FirstVisit,Date";

    #[test]
    fn formats_are_told_from_the_first_line() {
        let t = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
        let header = format!(r#"{{"format":"edgecount-export","version":1,"tenant":"{t}"}}"#);
        assert_eq!(detect(&header).unwrap().0, Format::Edgecount);
        let v2 = header.replace("\"version\":1", "\"version\":2");
        assert!(detect(&v2)
            .unwrap_err()
            .contains("unknown format version 2"));
        assert_eq!(detect(GOAT).unwrap().0, Format::GoatCounter);
        assert!(detect(&GOAT.replacen('2', "3", 1))
            .unwrap_err()
            .contains("GoatCounter format version 3"));
        let pages = r#""date","hostname","page","visits","visitors","pageviews","total_scroll_depth","total_scroll_depth_visits""#;
        assert_eq!(detect(pages).unwrap().0, Format::PlausiblePages);
        let visitors =
            "\u{feff}\"date\",\"visitors\",\"pageviews\",\"bounces\",\"visits\",\"visit_duration\"";
        assert_eq!(detect(visitors).unwrap().0, Format::PlausibleVisitors);
        assert_eq!(
            detect("page,count").unwrap().0,
            Format::Counts { csv: true }
        );
        assert_eq!(
            detect(r#"{"counter":"stars","count":3}"#).unwrap().0,
            Format::Counts { csv: false }
        );
        assert!(detect("hello,world").unwrap_err().starts_with("not a file"));
    }

    #[test]
    fn csv_quotes_and_commas() {
        assert_eq!(
            csv_fields(r#"a,"b,c","say ""hi""",,"1280,0,1""#).unwrap(),
            ["a", "b,c", "say \"hi\"", "", "1280,0,1"]
        );
        assert_eq!(csv_fields("x\r").unwrap(), ["x"]);
        assert_eq!(csv_fields(r#""open"#), None);
    }

    #[test]
    fn goatcounter_rows_become_visits() {
        let (format, columns) = detect(GOAT).unwrap();
        let row = r#"/blog/go-csv.html,"Writing CSV, in Go",0,,Firefox 128,Windows 10,3f2a-9e8d,0,news.ycombinator.com/item?id=41234,h,"1920,0,1",US-CA,1,2025-01-14T09:12:44Z"#;
        let Line::Visits(key, tally) = parse(format, &columns, row, false).unwrap() else {
            panic!("a visit");
        };
        let ts = parse_rfc3339("2025-01-14T09:12:44Z").unwrap();
        assert_eq!(
            key,
            (
                "/blog/go-csv.html".to_string(),
                ts / DAY_MS,
                Some(ts / 3_600_000),
                Some("news.ycombinator.com".to_string()),
                Some("US".to_string()),
                "browser"
            )
        );
        assert_eq!(
            tally,
            Tally {
                visits: 1,
                counted: 1,
                uniques: 1
            }
        );
        let event = "download-pdf,Download PDF,1,,Chrome 131,Windows 10,3f2a,0,,,\"1920,0,1\",US-CA,0,2025-01-14T09:13:10Z";
        assert_eq!(
            parse(format, &columns, event, false).unwrap(),
            Line::Skipped
        );
        let bot = "/,Home,0,,,,s,5,Google,g,\"0,0,1\",,1,2025-01-14T11:45:00Z";
        let Line::Visits(key, tally) = parse(format, &columns, bot, false).unwrap() else {
            panic!("a visit");
        };
        assert_eq!((key.3, key.5), (None, "bot"));
        assert_eq!(
            tally,
            Tally {
                visits: 1,
                counted: 0,
                uniques: 0
            }
        );
        assert!(parse(format, &columns, "/,Home,0", false)
            .unwrap_err()
            .contains("3 fields where the header has 14"));
        let bad_date = bot.replace("2025-01-14T11:45:00Z", "yesterday");
        assert!(parse(format, &columns, &bad_date, false)
            .unwrap_err()
            .contains("Date"));
    }

    #[test]
    fn plausible_rows_become_days() {
        let (format, columns) =
            detect(r#""date","hostname","page","visits","visitors","pageviews""#).unwrap();
        let row = r#""2023-02-09","plausible.io","/docs/stats-api",8,7,11"#;
        let day = parse_rfc3339("2023-02-09").unwrap() / DAY_MS;
        assert_eq!(
            parse(format, &columns, row, false).unwrap(),
            Line::Visits(
                ("/docs/stats-api".into(), day, None, None, None, "browser"),
                Tally {
                    visits: 11,
                    counted: 11,
                    uniques: 7
                }
            )
        );
        assert!(
            parse(format, &columns, r#""2023-02-09","h","/a",1,1,-3"#, false)
                .unwrap_err()
                .contains("pageviews")
        );
        assert!(
            parse(format, &columns, r#""09/02/2023","h","/a",1,1,3"#, false)
                .unwrap_err()
                .contains("YYYY-MM-DD")
        );
        let (format, columns) =
            detect("date,visitors,pageviews,bounces,visits,visit_duration").unwrap();
        assert_eq!(
            parse(format, &columns, "2023-02-09,119,304,77,134,21070", false).unwrap(),
            Line::SiteVisitors { day, visitors: 119 }
        );
    }

    #[test]
    fn start_at_n() {
        let ndjson = Format::Counts { csv: false };
        assert_eq!(
            parse(ndjson, &[], r#"{"counter":"stars","count":1234}"#, false).unwrap(),
            Line::CounterCount {
                label: "stars".into(),
                count: 1234
            }
        );
        assert_eq!(
            parse(ndjson, &[], r#"{"page":"/about","count":5}"#, false).unwrap(),
            Line::PageCount {
                page: "/about".into(),
                count: 5
            }
        );
        for bad in [
            r#"{"page":"/a","counter":"b","count":1}"#,
            r#"{"page":"/a"}"#,
            r#"{"page":"/a","count":-1}"#,
            r#"{"page":"/a","count":1,"x":1}"#,
            r#"{"counter":"","count":1}"#,
        ] {
            assert!(parse(ndjson, &[], bad, false).is_err(), "{bad}");
        }
        let (format, columns) = detect("counter,count").unwrap();
        assert_eq!(
            parse(format, &columns, "visitor-badge,99", false).unwrap(),
            Line::CounterCount {
                label: "visitor-badge".into(),
                count: 99
            }
        );
        assert!(parse(format, &columns, "x,99999999999999999", false).is_err());
    }
}
