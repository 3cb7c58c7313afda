//! The little XML read by hand: S3 error bodies and ListMultipartUploads answers (everything
//! else is parsed by `rusty-s3`). Bodies are bounded before they get here.

/// The text of the first `<name>` element, unescaped.
pub(crate) fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(unescape(&xml[start..end]))
}

/// `(Key, UploadId)` of each `<Upload>` of a ListMultipartUploads answer.
pub(crate) fn uploads(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<Upload>") {
        rest = &rest[i + "<Upload>".len()..];
        let Some(end) = rest.find("</Upload>") else {
            break;
        };
        let upload = &rest[..end];
        if let (Some(k), Some(id)) = (element(upload, "Key"), element(upload, "UploadId")) {
            out.push((k, id));
        }
        rest = &rest[end..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_errors_and_uploads() {
        let e = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>\
                 <Message>a &amp; b &lt;c&gt;</Message></Error>";
        assert_eq!(element(e, "Code").as_deref(), Some("NoSuchKey"));
        assert_eq!(element(e, "Message").as_deref(), Some("a & b <c>"));
        assert_eq!(element(e, "Missing"), None);
        let l = "<ListMultipartUploadsResult><Upload><Key>p/a</Key><UploadId>1</UploadId>\
                 </Upload><Upload><Key>p/b</Key><UploadId>2</UploadId></Upload>\
                 <IsTruncated>false</IsTruncated></ListMultipartUploadsResult>";
        assert_eq!(
            uploads(l),
            vec![("p/a".into(), "1".into()), ("p/b".into(), "2".into())]
        );
    }
}
