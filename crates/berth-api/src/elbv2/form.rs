//! The awsQuery request decoder: a form-urlencoded body (`Action=...&Version=...`) read
//! as flattened keys (`Targets.member.1.Id`, `Matcher.HttpCode`), viewed through prefixes.

use std::collections::BTreeMap;

/// A field of the form that could not be read: its wire path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    /// The parameter as it appeared on the wire, e.g. `Targets.member.2.Port`.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every parameter of one request, by its flattened key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    params: BTreeMap<String, String>,
}

/// The most parameters one form may carry (ELBv2's largest requests, a few hundred
/// targets of two or three parameters each, stay far below it).
pub const MAX_FORM_PARAMS: usize = 4 * crate::limits::MAX_COLLECTION_LEN;
/// The longest parameter name, in bytes.
pub const MAX_FORM_KEY_BYTES: usize = 256;

impl Form {
    /// Parses `application/x-www-form-urlencoded` (`+` is a space, `%XX` a byte, UTF-8),
    /// within the bounds of `crate::limits` and the ones above.
    pub fn parse(body: &[u8]) -> Result<Form, FormError> {
        let mut params = BTreeMap::new();
        for pair in body.split(|b| *b == b'&') {
            if pair.is_empty() {
                continue;
            }
            if params.len() >= MAX_FORM_PARAMS {
                return Err(FormError {
                    field: "(the form)".to_string(),
                    message: format!("has more than {MAX_FORM_PARAMS} parameters"),
                });
            }
            let (key, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            let key = percent_decode(key)?;
            if key.len() > MAX_FORM_KEY_BYTES {
                return Err(FormError {
                    field: key.chars().take(64).collect::<String>() + "...",
                    message: format!("is a parameter name longer than {MAX_FORM_KEY_BYTES} bytes"),
                });
            }
            let value = percent_decode(value).map_err(|e| FormError {
                field: key.clone(),
                message: e.message,
            })?;
            if value.len() > crate::limits::MAX_STRING_BYTES {
                return Err(FormError {
                    field: key,
                    message: format!(
                        "is {} bytes long; berth takes values of at most {} bytes",
                        value.len(),
                        crate::limits::MAX_STRING_BYTES
                    ),
                });
            }
            params.insert(key, value);
        }
        Ok(Form { params })
    }

    /// The `Action` parameter.
    pub fn action(&self) -> Option<&str> {
        self.params.get("Action").map(String::as_str)
    }

    /// The whole form, seen from its top level.
    pub fn root(&self) -> FormView<'_> {
        FormView {
            form: self,
            prefix: String::new(),
        }
    }
}

fn percent_decode(raw: &[u8]) -> Result<String, FormError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(h, 16).ok()
                });
                match hex {
                    Some(byte) => {
                        bytes.push(byte);
                        i += 2;
                    }
                    None => {
                        return Err(FormError {
                            field: String::from_utf8_lossy(raw).into_owned(),
                            message: "a '%' is not followed by two hex digits".to_string(),
                        })
                    }
                }
            }
            other => bytes.push(other),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| FormError {
        field: String::from_utf8_lossy(raw).into_owned(),
        message: "the decoded text is not UTF-8".to_string(),
    })
}

/// The part of a form under one prefix (`""`, `Matcher.`, `Targets.member.3.`).
#[derive(Debug, Clone)]
pub struct FormView<'a> {
    form: &'a Form,
    prefix: String,
}

impl<'a> FormView<'a> {
    /// The full wire key of `name` under this view.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// An optional parameter. Sent empty (`ProtocolVersion=`, as Terraform and the SDKs
    /// send an unset optional member) it is unset: this is the one place that rule
    /// lives, so every optional string, integer and boolean follows it.
    pub fn string(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|value| !value.is_empty())
    }

    /// A parameter whose empty value is a value, not an absence: a tag's or an
    /// attribute's `Value`.
    pub fn value(&self, name: &str) -> Option<String> {
        self.raw(name)
    }

    fn raw(&self, name: &str) -> Option<String> {
        self.form.params.get(&self.key(name)).cloned()
    }

    /// A required parameter; sent empty it is present, and the action's own checks
    /// name what is wrong with it.
    pub fn required_string(&self, name: &str) -> Result<String, FormError> {
        self.raw(name).ok_or_else(|| FormError {
            field: self.key(name),
            message: "is required".to_string(),
        })
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, FormError> {
        match self.string(name) {
            None => Ok(None),
            Some(text) => text.trim().parse::<i64>().map(Some).map_err(|_| FormError {
                field: self.key(name),
                message: format!("'{text}' is not an integer"),
            }),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, FormError> {
        match self.string(name).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(FormError {
                field: self.key(name),
                message: format!("'{other}' is not true or false"),
            }),
        }
    }

    /// Whether any parameter lives under `name.` (a structure was sent).
    pub fn has_structure(&self, name: &str) -> bool {
        let prefix = self.key(&format!("{name}."));
        self.form
            .params
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// The structure under `name.`.
    pub fn structure(&self, name: &str) -> FormView<'a> {
        FormView {
            form: self.form,
            prefix: self.key(&format!("{name}.")),
        }
    }

    /// The members of the list `name` (`name.member.N.`), in index order. Gaps are
    /// tolerated; an empty list (`name=`) has no members.
    pub fn members(&self, name: &str) -> Vec<FormView<'a>> {
        self.member_indexes(name)
            .into_iter()
            .map(|index| FormView {
                form: self.form,
                prefix: self.key(&format!("{name}.member.{index}.")),
            })
            .collect()
    }

    /// A list of strings: `name.member.N=value`.
    pub fn string_list(&self, name: &str) -> Vec<String> {
        self.member_indexes(name)
            .into_iter()
            .filter_map(|index| {
                self.form
                    .params
                    .get(&self.key(&format!("{name}.member.{index}")))
                    .cloned()
            })
            .collect()
    }

    fn member_indexes(&self, name: &str) -> Vec<u32> {
        let prefix = self.key(&format!("{name}.member."));
        let mut indexes: Vec<u32> = self
            .form
            .params
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                rest.split('.').next()?.parse::<u32>().ok()
            })
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms_are_bounded_in_parameters_names_and_values() {
        let many: Vec<String> = (0..=MAX_FORM_PARAMS).map(|i| format!("P{i}=v")).collect();
        let error = Form::parse(many.join("&").as_bytes()).unwrap_err();
        assert!(
            error.message.contains("more than 4000 parameters"),
            "{error}"
        );
        let fits: Vec<String> = (0..MAX_FORM_PARAMS).map(|i| format!("P{i}=v")).collect();
        assert!(Form::parse(fits.join("&").as_bytes()).is_ok());

        let long_value = format!("Name={}", "x".repeat(crate::limits::MAX_STRING_BYTES + 1));
        let error = Form::parse(long_value.as_bytes()).unwrap_err();
        assert_eq!(error.field, "Name");
        let long_key = format!("{}=1", "K".repeat(MAX_FORM_KEY_BYTES + 1));
        let error = Form::parse(long_key.as_bytes()).unwrap_err();
        assert!(error.message.contains("longer than 256"), "{error}");
    }

    use super::*;

    #[test]
    fn decodes_percent_plus_and_utf8() {
        let form = Form::parse(b"Action=X&Name=a+b%2Fc%C3%A9&Empty=&Flag").unwrap();
        let root = form.root();
        assert_eq!(form.action(), Some("X"));
        assert_eq!(root.string("Name").as_deref(), Some("a b/c\u{e9}"));
        assert_eq!(root.value("Empty").as_deref(), Some(""));
        assert_eq!(root.value("Flag").as_deref(), Some(""));
        assert_eq!(root.string("Missing"), None);
    }

    #[test]
    fn an_empty_optional_parameter_is_unset() {
        let form = Form::parse(b"ProtocolVersion=&Port=&Enabled=&Name=&Value=").unwrap();
        let root = form.root();
        assert_eq!(root.string("ProtocolVersion"), None);
        assert_eq!(root.int("Port").unwrap(), None);
        assert_eq!(root.bool("Enabled").unwrap(), None);
        assert!(!root.has_structure("ProtocolVersion"));
        // Required parameters and values stay what was sent.
        assert_eq!(root.required_string("Name").unwrap(), "");
        assert_eq!(root.value("Value").as_deref(), Some(""));
    }

    #[test]
    fn refuses_broken_escapes_and_non_utf8() {
        assert!(Form::parse(b"Name=%zz").is_err());
        assert!(Form::parse(b"Name=%4").is_err());
        let error = Form::parse(b"Name=%ff").unwrap_err();
        assert_eq!(error.field, "Name");
    }

    #[test]
    fn reads_lists_of_structures_in_index_order() {
        let form = Form::parse(
            b"Targets.member.2.Id=b&Targets.member.10.Id=c&Targets.member.1.Id=a&Targets.member.1.Port=80",
        )
        .unwrap();
        let members = form.root().members("Targets");
        let ids: Vec<String> = members.iter().map(|m| m.string("Id").unwrap()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(members[0].int("Port").unwrap(), Some(80));
        assert_eq!(members[1].int("Port").unwrap(), None);
        assert_eq!(members[1].key("Port"), "Targets.member.2.Port");
    }

    #[test]
    fn reads_string_lists_nested_structures_and_empty_lists() {
        let form = Form::parse(
            b"Names.member.1=web&Names.member.2=api&Arns=&Matcher.HttpCode=200&\
DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=arn",
        )
        .unwrap();
        let root = form.root();
        assert_eq!(root.string_list("Names"), ["web", "api"]);
        assert!(root.string_list("Arns").is_empty());
        assert!(root.has_structure("Matcher"));
        assert!(!root.has_structure("Match"));
        assert_eq!(
            root.structure("Matcher").string("HttpCode").as_deref(),
            Some("200")
        );
        let action = &root.members("DefaultActions")[0];
        let groups = action.structure("ForwardConfig").members("TargetGroups");
        assert_eq!(groups[0].string("TargetGroupArn").as_deref(), Some("arn"));
    }

    #[test]
    fn typed_fields_name_the_wire_key_on_error() {
        let form = Form::parse(b"Port=eighty&Enabled=yes&Targets.member.1.Port=x").unwrap();
        let root = form.root();
        assert_eq!(root.int("Port").unwrap_err().field, "Port");
        assert_eq!(root.bool("Enabled").unwrap_err().field, "Enabled");
        assert_eq!(
            root.members("Targets")[0].int("Port").unwrap_err().field,
            "Targets.member.1.Port"
        );
        assert_eq!(root.required_string("Name").unwrap_err().field, "Name");
    }
}
