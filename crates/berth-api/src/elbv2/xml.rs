//! A small XML writer for awsQuery responses: elements, escaped text, `<member>` lists,
//! ISO 8601 timestamps, and the response and error envelopes.

use super::ELBV2_XML_NAMESPACE;

/// Builds one XML document as a string.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub fn new() -> Self {
        XmlWriter::default()
    }

    pub fn finish(self) -> String {
        self.out
    }

    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// `<name>text</name>`, the text escaped.
    pub fn text(&mut self, name: &str, text: &str) {
        self.open(name);
        escape_into(&mut self.out, text);
        self.close(name);
    }

    pub fn optional_text(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.text(name, text);
        }
    }

    pub fn number(&mut self, name: &str, value: i64) {
        self.text(name, &value.to_string());
    }

    pub fn optional_number(&mut self, name: &str, value: Option<i64>) {
        if let Some(value) = value {
            self.number(name, value);
        }
    }

    pub fn boolean(&mut self, name: &str, value: bool) {
        self.text(name, if value { "true" } else { "false" });
    }

    /// An instant as ISO 8601 UTC with milliseconds.
    pub fn timestamp(&mut self, name: &str, epoch_millis: u64) {
        self.text(name, &iso8601(epoch_millis));
    }

    /// `<name><member>...</member>...</name>`; an empty list is `<name></name>`.
    pub fn list<T>(&mut self, name: &str, items: &[T], mut member: impl FnMut(&mut Self, &T)) {
        self.open(name);
        for item in items {
            self.open("member");
            member(self, item);
            self.close("member");
        }
        self.close(name);
    }

    pub fn string_list(&mut self, name: &str, items: &[String]) {
        self.list(name, items, |w, item| escape_into(&mut w.out, item));
    }
}

/// Escapes the five XML specials. Control characters XML 1.0 cannot carry at all
/// (even as references) become U+FFFD.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            '\r' => out.push_str("&#xD;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// `2024-03-01T00:00:00.000Z` from milliseconds since the Unix epoch.
pub fn iso8601(epoch_millis: u64) -> String {
    let millis = epoch_millis % 1000;
    let secs = epoch_millis / 1000;
    let days = (secs / 86_400) as i64;
    let of_day = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        of_day / 3600,
        (of_day / 60) % 60,
        of_day % 60
    )
}

/// What an action answers inside its `<ActionResult>`.
pub trait QueryResult {
    fn write_result(&self, writer: &mut XmlWriter);
}

/// `<ActionResponse xmlns=...><ActionResult>...</ActionResult><ResponseMetadata>...`.
pub fn response_document(action: &str, result: &dyn QueryResult, request_id: &str) -> String {
    let mut w = XmlWriter::new();
    w.out.push_str(&format!(
        "<{action}Response xmlns=\"{ELBV2_XML_NAMESPACE}\">"
    ));
    w.open(&format!("{action}Result"));
    result.write_result(&mut w);
    w.close(&format!("{action}Result"));
    w.open("ResponseMetadata");
    w.text("RequestId", request_id);
    w.close("ResponseMetadata");
    w.close(&format!("{action}Response"));
    w.finish()
}

/// `<ErrorResponse>` with a `Sender` (client) or `Receiver` (server) fault.
pub fn error_document(sender_fault: bool, code: &str, message: &str, request_id: &str) -> String {
    let mut w = XmlWriter::new();
    w.out
        .push_str(&format!("<ErrorResponse xmlns=\"{ELBV2_XML_NAMESPACE}\">"));
    w.open("Error");
    w.text("Type", if sender_fault { "Sender" } else { "Receiver" });
    w.text("Code", code);
    w.text("Message", message);
    w.close("Error");
    w.text("RequestId", request_id);
    w.close("ErrorResponse");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_specials_and_drops_illegal_controls() {
        assert_eq!(
            escape("a<b>&\"c\"'d'\u{1}\r\n"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;\u{FFFD}&#xD;\n"
        );
    }

    #[test]
    fn formats_iso8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_709_251_200_000), "2024-03-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
    }

    struct Groups(Vec<String>);
    impl QueryResult for Groups {
        fn write_result(&self, w: &mut XmlWriter) {
            w.string_list("Names", &self.0);
        }
    }

    #[test]
    fn wraps_results_and_errors_in_their_envelopes() {
        let doc = response_document("Describe", &Groups(vec!["a&b".into()]), "rid");
        assert_eq!(
            doc,
            format!("<DescribeResponse xmlns=\"{ELBV2_XML_NAMESPACE}\"><DescribeResult><Names><member>a&amp;b</member></Names></DescribeResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></DescribeResponse>")
        );
        let empty = response_document("Describe", &Groups(vec![]), "r");
        assert!(empty.contains("<Names></Names>"));
        let error = error_document(true, "TargetGroupNotFound", "no <such>", "rid");
        assert_eq!(
            error,
            format!("<ErrorResponse xmlns=\"{ELBV2_XML_NAMESPACE}\"><Error><Type>Sender</Type><Code>TargetGroupNotFound</Code><Message>no &lt;such&gt;</Message></Error><RequestId>rid</RequestId></ErrorResponse>")
        );
    }
}
