//! Just enough XML to read ELBv2's awsQuery answers: elements, text and `<member>`
//! lists. Attributes, namespaces and mixed content are ignored; that is all the
//! documents berth's own server writes.

use anyhow::bail;

/// One element: its name, its own text and its child elements.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct XmlElement {
    pub name: String,
    pub text: String,
    pub children: Vec<XmlElement>,
}

impl XmlElement {
    /// Parses a whole document into its root element.
    pub fn parse(document: &str) -> anyhow::Result<XmlElement> {
        let mut stack: Vec<XmlElement> = Vec::new();
        let mut root = None;
        let mut rest = document;
        while let Some(start) = rest.find('<') {
            let text = &rest[..start];
            if let Some(open) = stack.last_mut() {
                open.text.push_str(&unescape(text));
            }
            rest = &rest[start..];
            if let Some(after) = rest.strip_prefix("<?") {
                rest = skip_past(after, "?>")?;
                continue;
            }
            if let Some(after) = rest.strip_prefix("<!--") {
                rest = skip_past(after, "-->")?;
                continue;
            }
            let Some(end) = rest.find('>') else {
                bail!("unterminated tag in XML answer");
            };
            let tag = &rest[1..end];
            rest = &rest[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let Some(element) = stack.pop() else {
                    bail!("closing tag </{name}> without an opening one");
                };
                if element.name != name.trim() {
                    bail!("<{}> closed by </{}>", element.name, name.trim());
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
                continue;
            }
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name = tag
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            let element = XmlElement {
                name,
                ..Default::default()
            };
            if self_closing {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            } else {
                stack.push(element);
            }
        }
        if let Some(open) = stack.last() {
            bail!("<{}> is never closed", open.name);
        }
        root.ok_or_else(|| anyhow::anyhow!("empty XML answer"))
    }

    pub fn child(&self, name: &str) -> Option<&XmlElement> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The element at a path of child names (`["Error", "Code"]`).
    pub fn at(&self, path: &[&str]) -> Option<&XmlElement> {
        path.iter()
            .try_fold(self, |element, name| element.child(name))
    }

    /// The trimmed text at a path; `None` when absent or empty.
    pub fn text_at(&self, path: &[&str]) -> Option<&str> {
        self.at(path)
            .map(|e| e.text.trim())
            .filter(|t| !t.is_empty())
    }

    pub fn number_at(&self, path: &[&str]) -> Option<i64> {
        self.text_at(path).and_then(|t| t.parse().ok())
    }

    /// The `<member>` items of the list at `path`.
    pub fn members(&self, path: &[&str]) -> Vec<&XmlElement> {
        self.at(path)
            .map(|list| {
                list.children
                    .iter()
                    .filter(|c| c.name == "member")
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn skip_past<'a>(text: &'a str, end: &str) -> anyhow::Result<&'a str> {
    match text.find(end) {
        Some(at) => Ok(&text[at + end.len()..]),
        None => bail!("unterminated '{end}' in XML answer"),
    }
}

fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else {
            break;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_nested_lists_and_escapes() {
        let document = r#"<?xml version="1.0"?><DescribeLoadBalancersResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeLoadBalancersResult><LoadBalancers><member><LoadBalancerArn>arn:a&amp;b</LoadBalancerArn><AvailabilityZones><member><SubnetId>s1</SubnetId></member></AvailabilityZones><SecurityGroups/><Type>application</Type></member><member><LoadBalancerArn>arn:2</LoadBalancerArn></member></LoadBalancers></DescribeLoadBalancersResult></DescribeLoadBalancersResponse>"#;
        let root = XmlElement::parse(document).unwrap();
        let result = root.child("DescribeLoadBalancersResult").unwrap();
        let members = result.members(&["LoadBalancers"]);
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].text_at(&["LoadBalancerArn"]), Some("arn:a&b"));
        assert_eq!(members[0].members(&["AvailabilityZones"]).len(), 1);
        assert_eq!(members[0].text_at(&["Type"]), Some("application"));
        assert_eq!(members[1].text_at(&["Type"]), None);
        assert_eq!(unescape("&lt;x&gt; &#xD;&#65; & done"), "<x> \rA & done");
    }

    #[test]
    fn refuses_broken_documents() {
        assert!(XmlElement::parse("<a><b></a>").is_err());
        assert!(XmlElement::parse("<a>").is_err());
        assert!(XmlElement::parse("").is_err());
    }
}
