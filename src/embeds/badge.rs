//! The shields-style badge: label and value, widths from Verdana's real glyph metrics
//! (the font the SVG names) so text never clips, all text escaped for XML. Pure.

use crate::embeds::glyph_widths::{VERDANA_11_PACKED, VERDANA_BOLD_10};
use crate::error::{ApiError, ApiResult};

/// As long as a counter's label may be, so a counter's own label always fits.
pub const MAX_LABEL_CHARS: usize = crate::domain::counter::MAX_LABEL_CHARS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Flat,
    FlatSquare,
    ForTheBadge,
}

impl Style {
    pub fn parse(raw: Option<&str>) -> ApiResult<Style> {
        match raw {
            None | Some("flat") => Ok(Style::Flat),
            Some("flat-square") => Ok(Style::FlatSquare),
            Some("for-the-badge") => Ok(Style::ForTheBadge),
            Some(_) => Err(ApiError::InvalidParameter(
                "style must be flat, flat-square or for-the-badge".into(),
            )),
        }
    }
}

/// A colour: one of shields' names, or 3 or 6 hex digits (with or without `#`).
pub fn parse_color(raw: &str) -> ApiResult<String> {
    let named = match raw.to_ascii_lowercase().as_str() {
        "brightgreen" | "success" => Some("#4c1"),
        "green" => Some("#97ca00"),
        "yellowgreen" => Some("#a4a61d"),
        "yellow" => Some("#dfb317"),
        "orange" | "important" => Some("#fe7d37"),
        "red" | "critical" => Some("#e05d44"),
        "blue" | "informational" => Some("#007ec6"),
        "grey" | "gray" => Some("#555"),
        "lightgrey" | "lightgray" | "inactive" => Some("#9f9f9f"),
        "blueviolet" => Some("#8a2be2"),
        _ => None,
    };
    if let Some(hex) = named {
        return Ok(hex.to_string());
    }
    let hex = raw.strip_prefix('#').unwrap_or(raw);
    if matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(format!("#{}", hex.to_ascii_lowercase()))
    } else {
        Err(ApiError::InvalidParameter(format!(
            "{raw:?} is not a colour: use a name (brightgreen, green, yellow, orange, red, blue, grey, ...) or hex"
        )))
    }
}

pub fn check_label(raw: &str) -> ApiResult<String> {
    if raw.chars().count() > MAX_LABEL_CHARS || raw.chars().any(char::is_control) {
        return Err(ApiError::InvalidParameter(format!(
            "label must be at most {MAX_LABEL_CHARS} characters without control characters"
        )));
    }
    Ok(raw.to_string())
}

/// `1234` → `1.2k` with `short`, else the plain number. Rounds down, like shields.
/// Integer arithmetic: exact for every value, and no float formatting in the bundle.
pub fn format_count(value: i64, short: bool) -> String {
    let magnitude = value.unsigned_abs();
    if !short || magnitude < 1_000 {
        return value.to_string();
    }
    let sign = if value < 0 { "-" } else { "" };
    let units = [
        (1_000_000_000_000, "T"),
        (1_000_000_000, "B"),
        (1_000_000, "M"),
        (1_000, "k"),
    ];
    let (size, unit) = units
        .into_iter()
        .find(|(size, _)| magnitude >= *size)
        .unwrap_or((1, ""));
    let whole = magnitude / size;
    let tenth = magnitude % size * 10 / size;
    if whole < 10 && tenth > 0 {
        format!("{sign}{whole}.{tenth}{unit}")
    } else {
        format!("{sign}{whole}{unit}")
    }
}

thread_local! {
    /// Verdana 11px as (first code point, run length - 1, width), unpacked once.
    static VERDANA_11: Vec<(u16, u16, u16)> = unpack(VERDANA_11_PACKED);
}

/// The packed runs (see `glyph_widths`) as a table to search.
fn unpack(packed: &[u8]) -> Vec<(u16, u16, u16)> {
    let mut next = 0u16;
    packed
        .chunks_exact(5)
        .map(|run| {
            let lo = next.wrapping_add(u16::from_le_bytes([run[0], run[1]]));
            let len = u16::from(run[2]);
            next = lo.wrapping_add(len).wrapping_add(1);
            (lo, len, u16::from_le_bytes([run[3], run[4]]))
        })
        .collect()
}

fn glyph_width(table: &[(u16, u16, u16)], c: char, fallback: f64) -> f64 {
    let code = c as u32;
    if code > 0x2fff {
        return 11.0;
    }
    let found = table
        .binary_search_by(|&(lo, len, _)| {
            if code < u32::from(lo) {
                std::cmp::Ordering::Greater
            } else if code > u32::from(lo) + u32::from(len) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .ok();
    found.map_or(fallback, |i| f64::from(table[i].2) / 100.0)
}

/// The width of `text` set in Verdana 11px, in pixels.
pub fn text_width(text: &str) -> f64 {
    VERDANA_11.with(|table| {
        let m = glyph_width(table, 'm', 10.0);
        text.chars().map(|c| glyph_width(table, c, m)).sum()
    })
}

/// The width of `text` in Verdana bold 10px with for-the-badge's letter spacing.
fn caps_width(text: &str) -> f64 {
    let n = text.chars().count() as f64;
    let glyphs: f64 = text
        .chars()
        .map(|c| match glyph_width(&VERDANA_BOLD_10, c, f64::NAN) {
            w if w.is_nan() => VERDANA_11.with(|table| glyph_width(table, c, 11.0)),
            w => w,
        })
        .sum();
    glyphs + 1.25 * (n - 1.0).max(0.0)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A badge request's parameters, all checked before anything is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeOptions {
    /// `None`: the counter's own label, or "views".
    pub label: Option<String>,
    pub color: String,
    pub label_color: String,
    pub style: Style,
    pub short: bool,
    /// `inc=1`: count a visit (or an increment) first.
    pub increment: bool,
}

impl BadgeOptions {
    /// From the query; `param(name)` answers a parameter given at most once.
    pub fn parse(param: impl Fn(&str) -> ApiResult<Option<String>>) -> ApiResult<Self> {
        let increment = match param("inc")?.as_deref() {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") => true,
            Some(_) => return Err(ApiError::InvalidParameter("inc must be 1 or 0".into())),
        };
        let short = match param("format")?.as_deref() {
            None | Some("full") => false,
            Some("short") => true,
            Some(_) => {
                return Err(ApiError::InvalidParameter(
                    "format must be short or full".into(),
                ))
            }
        };
        Ok(BadgeOptions {
            label: param("label")?.as_deref().map(check_label).transpose()?,
            color: parse_color(param("color")?.as_deref().unwrap_or("brightgreen"))?,
            label_color: parse_color(param("label_color")?.as_deref().unwrap_or("grey"))?,
            style: Style::parse(param("style")?.as_deref())?,
            short,
            increment,
        })
    }
}

/// What an error badge says: short enough to read in a README.
pub fn error_text(code: &str) -> &'static str {
    match code {
        "INVALID_PARAMETER" => "invalid parameter",
        "COUNTER_NOT_FOUND" => "counter not found",
        "TENANT_NOT_FOUND" => "tenant not found",
        "PAGE_NOT_FOUND" => "page not found",
        "PAGE_LIMIT_REACHED" => "page limit reached",
        "COUNTER_OVERFLOW" => "counter is full",
        _ => "unavailable",
    }
}

/// A badge to draw. `for-the-badge` draws capitals: its callers give the text in
/// capitals (the Worker uses the runtime's own Unicode uppercasing; Rust's tables would
/// have been a twentieth of the bundle).
pub struct Badge<'a> {
    pub label: &'a str,
    pub value: &'a str,
    pub color: &'a str,
    pub label_color: &'a str,
    pub style: Style,
}

impl Badge<'_> {
    /// Left and right widths, whole pixels.
    pub fn widths(&self) -> (u32, u32) {
        match self.style {
            Style::ForTheBadge => {
                let side = |t: &str| (caps_width(t) + 24.0).ceil() as u32;
                (side(self.label), side(self.value))
            }
            _ => {
                let side = |t: &str| (text_width(t) + 10.0).ceil() as u32;
                (side(self.label), side(self.value))
            }
        }
    }

    pub fn render(&self) -> String {
        let (left, right) = self.widths();
        let total = left + right;
        let (label, value) = match self.style {
            Style::ForTheBadge => (escape(self.label), escape(self.value)),
            _ => (escape(self.label), escape(self.value)),
        };
        let title = format!("{label}: {value}");
        let (height, radius, gradient) = match self.style {
            Style::Flat => (20, 3, true),
            Style::FlatSquare => (20, 0, false),
            Style::ForTheBadge => (28, 0, false),
        };
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{height}" role="img" aria-label="{title}"><title>{title}</title>"#
        );
        if gradient {
            svg.push_str(r##"<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>"##);
        }
        svg.push_str(&format!(
            r##"<clipPath id="r"><rect width="{total}" height="{height}" rx="{radius}" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{left}" height="{height}" fill="{lc}"/><rect x="{left}" width="{right}" height="{height}" fill="{c}"/>"##,
            lc = self.label_color,
            c = self.color,
        ));
        if gradient {
            svg.push_str(&format!(
                r#"<rect width="{total}" height="{height}" fill="url(#s)"/>"#
            ));
        }
        svg.push_str("</g>");
        match self.style {
            Style::ForTheBadge => svg.push_str(&format!(
                r##"<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="100" font-weight="bold" letter-spacing="12.5"><text transform="scale(.1)" x="{lx}" y="175" textLength="{lt}">{label}</text><text transform="scale(.1)" x="{rx}" y="175" textLength="{rt}">{value}</text></g></svg>"##,
                lx = left * 5,
                rx = left * 10 + right * 5,
                lt = (left - 24) * 10,
                rt = (right - 24) * 10,
            )),
            _ => svg.push_str(&format!(
                r##"<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110"><text aria-hidden="true" x="{lx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{lt}">{label}</text><text x="{lx}" y="140" transform="scale(.1)" textLength="{lt}">{label}</text><text aria-hidden="true" x="{rx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{rt}">{value}</text><text x="{rx}" y="140" transform="scale(.1)" textLength="{rt}">{value}</text></g></svg>"##,
                lx = left * 5,
                rx = left * 10 + right * 5,
                lt = (left - 10) * 10,
                rt = (right - 10) * 10,
            )),
        }
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn badge<'a>(label: &'a str, value: &'a str, style: Style) -> Badge<'a> {
        Badge {
            label,
            value,
            color: "#4c1",
            label_color: "#555",
            style,
        }
    }

    #[test]
    fn the_packed_table_unpacks_to_sorted_runs() {
        let table = unpack(VERDANA_11_PACKED);
        assert!(table.len() > 2_000);
        assert_eq!(table[0].0, 0x20, "starts at the space");
        assert!(
            table.windows(2).all(|w| w[0].0 + w[0].1 < w[1].0),
            "sorted, disjoint"
        );
        let (lo, len, _) = *table.last().unwrap();
        assert!(lo + len <= 0x2fff);
    }

    #[test]
    fn widths_follow_verdana_metrics() {
        // Verdana 11px: "views" = v 6.51 + i 3.02 + e 6.55 + w 9 + s 5.73 = 30.81 px;
        // "1234" = 4 × 6.99 = 27.96 px; each side gets 5 px of padding on both ends.
        assert!(
            (text_width("views") - 30.81).abs() < 0.001,
            "{}",
            text_width("views")
        );
        assert!((text_width("1234") - 27.96).abs() < 0.001);
        assert_eq!(badge("views", "1234", Style::Flat).widths(), (41, 38));
        // Wide letters take more room than narrow ones of the same count.
        assert!(text_width("WWWW") > 2.0 * text_width("iiii"));
        // Non-ASCII: accented Latin from the table, CJK full width, emoji full width.
        assert!((text_width("é") - text_width("e")).abs() < 0.01);
        assert_eq!(text_width("日本"), 22.0);
        assert_eq!(text_width("😀"), 11.0);
        assert!(badge("訪問者", "5", Style::Flat).widths().0 >= 43);
    }

    #[test]
    fn for_the_badge_is_taller_and_wider() {
        let flat = badge("views", "12", Style::Flat);
        let caps = badge("VIEWS", "12", Style::ForTheBadge);
        assert!(caps.widths().0 > flat.widths().0);
        assert!(caps.render().contains(r#"height="28""#));
        assert!(caps.render().contains(">VIEWS<"));
    }

    #[test]
    fn text_is_escaped() {
        let svg = badge("<script>alert('x')</script>", "a&b\"", Style::Flat).render();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt;"));
        assert!(svg.contains("a&amp;b&quot;"));
    }

    /// The rendered form is a format: pin it.
    #[test]
    fn snapshot_flat() {
        let svg = badge("views", "1.2k", Style::Flat).render();
        assert_eq!(
            svg,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="76" height="20" role="img" aria-label="views: 1.2k"><title>views: 1.2k</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="76" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="41" height="20" fill="#555"/><rect x="41" width="35" height="20" fill="#4c1"/><rect width="76" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110"><text aria-hidden="true" x="205" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="310">views</text><text x="205" y="140" transform="scale(.1)" textLength="310">views</text><text aria-hidden="true" x="585" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="250">1.2k</text><text x="585" y="140" transform="scale(.1)" textLength="250">1.2k</text></g></svg>"##
        );
    }

    #[test]
    fn snapshot_flat_square_has_no_rounding_or_gradient() {
        let svg = badge("likes", "7", Style::FlatSquare).render();
        assert!(svg.contains(r#"rx="0""#));
        assert!(!svg.contains("linearGradient"));
    }

    #[test]
    fn colours_and_styles() {
        assert_eq!(parse_color("brightgreen").unwrap(), "#4c1");
        assert_eq!(parse_color("ABC").unwrap(), "#abc");
        assert_eq!(parse_color("#00ff00").unwrap(), "#00ff00");
        for bad in ["", "#12", "zzz", "red;", "#1234567", "url(x)"] {
            assert_eq!(
                parse_color(bad).unwrap_err().code(),
                "INVALID_PARAMETER",
                "{bad:?}"
            );
        }
        assert_eq!(
            Style::parse(Some("flat-square")).unwrap(),
            Style::FlatSquare
        );
        assert!(Style::parse(Some("plastic")).is_err());
        assert!(
            check_label(&"x".repeat(128)).is_ok(),
            "a counter's longest label"
        );
        assert!(check_label(&"x".repeat(129)).is_err());
        assert!(check_label("a\u{0}").is_err());
    }

    #[test]
    fn options_are_all_checked_up_front() {
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            BadgeOptions::parse(move |name| {
                let mut found = pairs.iter().filter(|(k, _)| *k == name);
                Ok(found.next().map(|(_, v)| v.to_string()))
            })
        };
        let defaults = with(&[]).unwrap();
        assert_eq!(defaults.color, "#4c1");
        assert!(!defaults.increment && !defaults.short && defaults.label.is_none());
        let full = with(&[("inc", "1"), ("label", "hits"), ("format", "short")]).unwrap();
        assert!(full.increment && full.short);
        assert_eq!(full.label.as_deref(), Some("hits"));
        for bad in [
            &[("inc", "1"), ("color", "notacolour")][..],
            &[("inc", "yes")],
            &[("inc", "1"), ("style", "plastic")],
            &[("inc", "1"), ("format", "tiny")],
            &[("inc", "1"), ("label_color", "nope")],
        ] {
            assert_eq!(with(bad).unwrap_err().code(), "INVALID_PARAMETER");
        }
    }

    #[test]
    fn short_numbers() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1k"),
            (1_234, "1.2k"),
            (12_345, "12k"),
            (999_999, "999k"),
            (1_250_000, "1.2M"),
            (3_000_000_000, "3B"),
            (9_999, "9.9k"),
            (10_500, "10k"),
            (1_000_000_000_000_000, "1000T"),
            (i64::MIN + 1, "-9223372T"),
            (-4_500, "-4.5k"),
        ] {
            assert_eq!(format_count(n, true), text, "{n}");
        }
        assert_eq!(format_count(1_234, false), "1234");
    }
}
