//! airlock-report: the look of every document airlock writes for people to read and sign.
//!
//! The appliance's compliance reports (`airlockd report`) and the connected side's bill of
//! lading (`airlock report`) are read by compliance officers, printed, and kept as evidence, so
//! they share one form:
//!
//! * [`page`] wraps sections in one self-contained HTML file: an inline style sheet ([`CSS`])
//!   that reads on screen and prints to A4 with each section on a new page and table headers
//!   repeated on every page; a Content-Security-Policy meta ([`CSP`]) that lets the file load
//!   nothing at all (no script, font, image or link leaves it). Values go through maud, which
//!   escapes by default, so text from a bundle cannot become markup.
//! * Templates are maud's `html!` (compile-time checked, escaping on); a crate that writes
//!   them depends on `maud` itself, since the macro names it.
//! * [`csv`] writes RFC 4180: one header row, fields quoted only where needed, CRLF records.

use maud::DOCTYPE;
pub use maud::{html, Markup, PreEscaped};

/// Inline style sheet: readable on screen, A4 in print, table headers repeated on every page,
/// each section on a new page. No fonts, images or URLs.
pub const CSS: &str = "\
@page { size: A4; margin: 14mm 12mm; }
body { font-family: sans-serif; font-size: 10pt; color: #111; margin: 1.5em; }
h1 { font-size: 16pt; margin: 0 0 .4em; }
h2 { font-size: 13pt; margin: 1.2em 0 .4em; border-bottom: 1px solid #999; }
h3 { font-size: 11pt; margin: 1em 0 .3em; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 1em; }
th, td { border: 1px solid #bbb; padding: 2px 4px; text-align: left; vertical-align: top; }
th { background: #eee; }
table.rows { font-size: 7.5pt; table-layout: fixed; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
td { overflow-wrap: anywhere; }
th { overflow-wrap: normal; hyphens: auto; }
.mono { font-family: monospace; overflow-wrap: anywhere; word-break: break-all; }
.accepted { color: #145a14; }
.rejected, .failed, .interrupted { color: #9b1010; font-weight: bold; }
.bad { color: #9b1010; font-weight: bold; }
.good { color: #145a14; font-weight: bold; }
.sign td { height: 3em; }
svg.bar { display: block; margin: .3em 0 .8em; }
section.page { break-before: page; page-break-before: always; }
@media print { body { margin: 0; } }
";

/// The page's Content-Security-Policy: nothing may be loaded; only the inline style applies.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// `—` for a missing value.
pub fn dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("—")
}

/// An optional value as text, empty when missing.
pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

/// One self-contained HTML page: `title` in the head, `heading` as the first `h1`, `header`
/// below it, then each section; every section after the first starts a new printed page.
pub fn page(title: &str, heading: &str, header: Markup, sections: Vec<Markup>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(CSP);
                meta name="referrer" content="no-referrer";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { (heading) }
                    (header)
                }
                @for (i, s) in sections.into_iter().enumerate() {
                    section class=[(i > 0).then_some("page")] { (s) }
                }
            }
        }
    }
}

/// A horizontal bar chart as inline SVG: one bar per `(label, value, css colour)`, scaled to
/// the largest value. Labels are escaped like every other value.
pub fn bar_chart(bars: &[(&str, u64, &str)]) -> Markup {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let row = 16u64;
    let height = row * bars.len() as u64 + 4;
    html! {
        svg.bar width="480" height=(height) viewBox={"0 0 480 " (height)} role="img" {
            @for (i, (label, value, colour)) in bars.iter().enumerate() {
                @let y = i as u64 * row + 2;
                @let w = value * 300 / max;
                text x="0" y=(y + 11) font-size="10" { (label) }
                rect x="110" y=(y) width=(w.max(1)) height="12" fill=(colour) {}
                text x=(114 + w) y=(y + 11) font-size="10" { (value) }
            }
        }
    }
}

/// One CSV field, RFC 4180: quoted when it holds a comma, a double quote, CR or LF, with
/// double quotes doubled inside.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Rows as RFC 4180 CSV: fields separated by commas, records ended by CRLF.
pub fn csv<S: AsRef<str>>(rows: &[Vec<S>]) -> Vec<u8> {
    let mut out = String::new();
    for row in rows {
        let fields: Vec<String> = row.iter().map(|f| csv_field(f.as_ref())).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_rfc_4180_requires() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(csv_field("semi;colon 'q'"), "semi;colon 'q'");
        let out = csv(&[vec!["h1", "h2"], vec!["x,y", "\""]]);
        assert_eq!(out, b"h1,h2\r\n\"x,y\",\"\"\"\"\r\n");
    }

    #[test]
    fn the_page_escapes_values_and_loads_nothing() {
        let evil = "<img src=x onerror=alert(1)>";
        let p = page(
            evil,
            evil,
            html! { p { (evil) } },
            vec![html! { p { "one" } }, html! { p { "two" } }],
        )
        .into_string();
        assert!(!p.contains("<img"), "{p}");
        assert!(p.contains("&lt;img"));
        assert!(p.contains("default-src 'none'"));
        assert_eq!(p.matches("class=\"page\"").count(), 1, "{p}");
        for bad in ["http:", "https:", "src=\"", "href=", "url("] {
            assert!(!p.contains(bad), "{bad}");
        }
    }

    #[test]
    fn bars_scale_to_the_largest_value_and_escape_labels() {
        let svg = bar_chart(&[("a<b", 10, "#145a14"), ("c", 5, "#9b1010")]).into_string();
        assert!(svg.contains("a&lt;b"));
        assert!(svg.contains("width=\"300\""), "{svg}");
        assert!(svg.contains("width=\"150\""), "{svg}");
    }
}
