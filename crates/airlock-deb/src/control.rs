//! deb822 paragraphs of a whole `Packages` index or dpkg `status` file, read as untrusted
//! text.
//!
//! [`paragraphs`] walks the text once and yields [`Paragraph`]s that borrow from it: the
//! paragraph's own text (kept verbatim so that it can be published again) and each field's
//! name and value. Paragraphs are separated by blank or whitespace-only lines; a line that
//! starts with a space or tab continues the previous field; field names compare
//! case-insensitively. Every paragraph is bounded ([`MAX_PARAGRAPH_BYTES`], [`MAX_FIELDS`])
//! and errors name the paragraph by number. A field given twice in one paragraph is an error,
//! because readers disagree on which one counts.
//!
//! Why not a crate: `deb822-fast` 0.2 (its borrowed API) is as fast on the bookworm `main`
//! index (63,440 paragraphs, 50 MB: 70–170 ms for it, 88–130 ms for this splitter, release
//! build on a shared two-core machine), but it gives no access to a paragraph's verbatim
//! text, has no bound on a paragraph's size or field count, accepts a field given twice,
//! skips `#` lines, and does not say which paragraph an error is in. The splitter here
//! borrows everything and finds line ends with `memchr`.

use crate::DebError;

/// Largest paragraph accepted, in bytes.
pub const MAX_PARAGRAPH_BYTES: usize = 1 << 20;
/// Most fields accepted in one paragraph.
pub const MAX_FIELDS: usize = 1000;

/// One field: its name as written and its value with surrounding whitespace removed
/// (a multi-line value keeps its continuation lines, newlines and leading spaces included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// One paragraph of a deb822 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph<'a> {
    /// 1-based position of the paragraph in the file.
    pub number: usize,
    /// The paragraph's lines as they appear, each ending in `\n` (the last one may not).
    pub text: &'a str,
    fields: Vec<Field<'a>>,
}

impl<'a> Paragraph<'a> {
    /// The value of field `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }

    /// The fields in the order they appear.
    pub fn fields(&self) -> &[Field<'a>] {
        &self.fields
    }
}

/// The paragraphs of `text`, in order; the first error ends the iteration.
pub fn paragraphs(text: &str) -> Paragraphs<'_> {
    Paragraphs {
        text,
        pos: 0,
        number: 0,
        failed: false,
    }
}

/// Iterator returned by [`paragraphs`].
#[derive(Debug)]
pub struct Paragraphs<'a> {
    text: &'a str,
    pos: usize,
    number: usize,
    failed: bool,
}

/// The line of `text` starting at `pos`, without its `\n`, and where the next line starts.
fn line_at(text: &str, pos: usize) -> (&str, usize) {
    let rest = text.get(pos..).unwrap_or_default();
    match memchr::memchr(b'\n', rest.as_bytes()) {
        Some(i) => (rest.get(..i).unwrap_or_default(), pos + i + 1),
        None => (rest, text.len()),
    }
}

fn is_blank(line: &str) -> bool {
    line.bytes().all(|c| matches!(c, b' ' | b'\t' | b'\r'))
}

impl<'a> Paragraphs<'a> {
    fn next_paragraph(&mut self) -> Result<Option<Paragraph<'a>>, DebError> {
        let text = self.text;
        // Skip blank lines between paragraphs.
        loop {
            if self.pos >= text.len() {
                return Ok(None);
            }
            let (line, next) = line_at(text, self.pos);
            if !is_blank(line) {
                break;
            }
            self.pos = next;
        }
        self.number += 1;
        let n = self.number;
        let start = self.pos;
        let mut fields: Vec<Field<'a>> = Vec::with_capacity(24);
        // Where the value of the field being read starts, and where its last line ends.
        let mut current: Option<(&'a str, usize, usize)> = None;
        let mut end = start;
        while self.pos < text.len() {
            let (line, next) = line_at(text, self.pos);
            if is_blank(line) {
                break;
            }
            if next - start > MAX_PARAGRAPH_BYTES {
                return Err(DebError(format!(
                    "paragraph {n}: more than {MAX_PARAGRAPH_BYTES} bytes"
                )));
            }
            if line.starts_with([' ', '\t']) {
                match current.as_mut() {
                    Some(c) => c.2 = self.pos + line.len(),
                    None => {
                        return Err(DebError(format!(
                            "paragraph {n}: continuation line before any field"
                        )))
                    }
                }
            } else {
                if let Some(c) = current.take() {
                    push_field(&mut fields, text, c, n)?;
                }
                let Some((name, _)) = line.split_once(':') else {
                    return Err(DebError(format!(
                        "paragraph {n}: line {:?} is not a `Name: value` field",
                        clip(line)
                    )));
                };
                let name_ok = !name.is_empty()
                    && !name.starts_with(['#', '-'])
                    && name.bytes().all(|c| c.is_ascii_graphic());
                if !name_ok {
                    return Err(DebError(format!(
                        "paragraph {n}: bad field name {:?}",
                        clip(name)
                    )));
                }
                let value_start = self.pos + name.len() + 1;
                current = Some((name, value_start, self.pos + line.len()));
            }
            end = next;
            self.pos = next;
        }
        if let Some(c) = current.take() {
            push_field(&mut fields, text, c, n)?;
        }
        Ok(Some(Paragraph {
            number: n,
            text: text.get(start..end).unwrap_or_default(),
            fields,
        }))
    }
}

fn push_field<'a>(
    fields: &mut Vec<Field<'a>>,
    text: &'a str,
    (name, from, to): (&'a str, usize, usize),
    n: usize,
) -> Result<(), DebError> {
    if fields.len() >= MAX_FIELDS {
        return Err(DebError(format!(
            "paragraph {n}: more than {MAX_FIELDS} fields"
        )));
    }
    if fields.iter().any(|f| f.name.eq_ignore_ascii_case(name)) {
        return Err(DebError(format!("paragraph {n}: field {name} given twice")));
    }
    let value = text.get(from..to).unwrap_or_default().trim();
    fields.push(Field { name, value });
    Ok(())
}

/// At most 64 characters of `s`, for error messages.
pub(crate) fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, DebError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_paragraph() {
            Ok(p) => p.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paragraphs_and_fields() {
        let t = "Package: a\nversion: 1\nDescription: short\n long\n .\n more\n\n \t\n\nPackage: b\r\nDepends: c,\n d\n";
        let ps: Vec<_> = paragraphs(t).collect::<Result<_, _>>().unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("VERSION"), Some("1"));
        assert_eq!(ps[0].get("description"), Some("short\n long\n .\n more"));
        assert_eq!(
            ps[0].text,
            "Package: a\nversion: 1\nDescription: short\n long\n .\n more\n"
        );
        assert_eq!(ps[1].number, 2);
        assert_eq!(ps[1].get("Package"), Some("b"));
        assert_eq!(ps[1].get("Depends"), Some("c,\n d"));
        assert_eq!(ps[1].text, "Package: b\r\nDepends: c,\n d\n");
        assert_eq!(paragraphs("").count(), 0);
        assert_eq!(paragraphs("\n\n  \n").count(), 0);
    }

    #[test]
    fn errors_name_the_paragraph() {
        let e = |t: &str| paragraphs(t).find_map(Result::err).unwrap().0;
        assert!(e("Package: a\n\n continued\n").contains("paragraph 2"));
        assert!(e("Package: a\n\nPackage: b\nnonsense\n").contains("paragraph 2"));
        assert!(e("Package: a\npackage: b\n").contains("twice"));
        assert!(e(": x\n").contains("bad field name"));
        let many: String = (0..=MAX_FIELDS).map(|i| format!("F{i}: x\n")).collect();
        assert!(e(&many).contains("paragraph 1: more than 1000 fields"));
        let big = format!(
            "Package: a\n\nPackage: b\nDescription: x\n{}",
            " y\n".repeat(MAX_PARAGRAPH_BYTES / 3 + 1)
        );
        let err = e(&big);
        assert!(err.contains("paragraph 2: more than"), "{err}");
        // Iteration stops at the first error.
        assert_eq!(paragraphs("nonsense\n\nPackage: a\n").count(), 1);
    }
}
