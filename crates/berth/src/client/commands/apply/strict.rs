//! Strict reading of berth's own files: a key the request type does not know is an
//! error naming it, with the nearest key it does know (`desiredCont`: did you mean
//! `desiredCount`?). The ECS API itself goes on ignoring unknown request fields, as ECS
//! does; only `berth apply`'s files are held to this.
//!
//! Unknown keys are found by `serde_ignored` while the request deserializes; the known
//! keys at each place come from walking the request type's own shape once
//! ([`known_fields`]), so they are never listed by hand.

use std::collections::BTreeMap;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde_json::Value;

/// Reads `value` as a `T`, refusing keys `T` does not know. The error is
/// `path: message`, the path in the file's own terms (`containerDefinitions[0].comand`).
pub fn deserialize<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    let mut ignored = Vec::new();
    let mut note = |path: serde_ignored::Path| ignored.push(path.to_string());
    let result = serde_path_to_error::deserialize::<_, T>(serde_ignored::Deserializer::new(
        value, &mut note,
    ));
    let body = result.map_err(|error| {
        (
            path_of(&error.path().to_string()),
            error.inner().to_string(),
        )
    })?;
    if let Some(path) = ignored.first() {
        let (parent, key) = path.rsplit_once('.').unwrap_or(("", path.as_str()));
        let known = known_fields::<T>();
        let hint = known
            .get(&normalized(parent))
            .and_then(|fields| nearest(key, fields))
            .map(|near| format!(" (did you mean `{near}`?)"))
            .unwrap_or_default();
        return Err((path_of(path), format!("unknown field `{key}`{hint}")));
    }
    Ok(body)
}

/// serde's `a.0.b` as the file reads: `a[0].b`.
fn path_of(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.').filter(|p| !p.is_empty() && *p != "?") {
        if part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    if out.is_empty() {
        ".".to_string()
    } else {
        out
    }
}

/// A path with every list index as 0 and no option markers, as [`known_fields`] keys it.
fn normalized(path: &str) -> String {
    path.split('.')
        .filter(|p| !p.is_empty() && *p != "?")
        .map(|p| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                "0"
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The known key closest to `key`, if one is close enough to be what was meant.
fn nearest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|candidate| (strsim::jaro_winkler(key, candidate), *candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// The field names of every struct in `T`'s shape, by normalized path (`""` for `T`
/// itself, `containerDefinitions.0` for the elements of that list).
pub fn known_fields<T: DeserializeOwned>() -> BTreeMap<String, &'static [&'static str]> {
    let mut found = BTreeMap::new();
    // The walk ends in an error at the first value it cannot make up; what it found
    // before is kept.
    let _ = T::deserialize(Walk {
        path: String::new(),
        found: &mut found,
        depth: 0,
    });
    found
}

type WalkError = de::value::Error;

/// A deserializer that offers every field of every struct once, with a made-up value.
struct Walk<'f> {
    path: String,
    found: &'f mut BTreeMap<String, &'static [&'static str]>,
    depth: usize,
}

impl<'f> Walk<'f> {
    fn child(&mut self, part: &str) -> Walk<'_> {
        let path = if self.path.is_empty() {
            part.to_string()
        } else {
            format!("{}.{part}", self.path)
        };
        Walk {
            path,
            found: self.found,
            depth: self.depth + 1,
        }
    }
}

const MAX_DEPTH: usize = 16;

impl<'de> de::Deserializer<'de> for Walk<'_> {
    type Error = WalkError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
        visitor.visit_unit()
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, WalkError> {
        self.found.entry(self.path.clone()).or_insert(fields);
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom("too deep"));
        }
        visitor.visit_map(Fields {
            walk: &mut self,
            fields,
            next: 0,
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, WalkError> {
        visitor.visit_seq(One {
            walk: Some(self.child("0")),
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, WalkError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, WalkError> {
        let first = variants.first().copied().unwrap_or_default();
        visitor.visit_enum(first.into_deserializer())
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
        visitor.visit_bool(false)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
        visitor.visit_i64(0)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
        visitor.visit_u64(0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
        visitor.visit_f64(0.0)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
        visitor.visit_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
        visitor.visit_str("")
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WalkError> {
        visitor.visit_map(de::value::MapDeserializer::new(
            std::iter::empty::<((), ())>(),
        ))
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i128 u8 u16 u32 u128 f32 char bytes byte_buf unit unit_struct
        tuple tuple_struct identifier ignored_any
    }
}

/// Each field of a struct once, in order.
struct Fields<'w, 'f> {
    walk: &'w mut Walk<'f>,
    fields: &'static [&'static str],
    next: usize,
}

impl<'de> de::MapAccess<'de> for Fields<'_, '_> {
    type Error = WalkError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, WalkError> {
        match self.fields.get(self.next) {
            Some(field) => seed.deserialize((*field).into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, WalkError> {
        let field = self.fields[self.next];
        self.next += 1;
        seed.deserialize(self.walk.child(field))
    }
}

/// A list of one made-up element.
struct One<'f> {
    walk: Option<Walk<'f>>,
}

impl<'de> de::SeqAccess<'de> for One<'_> {
    type Error = WalkError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, WalkError> {
        match self.walk.take() {
            Some(walk) => seed.deserialize(walk).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::{CreateServiceRequest, RegisterTaskDefinitionRequest};
    use serde_json::json;

    #[test]
    fn the_shape_of_a_request_is_found_down_to_its_lists() {
        let fields = known_fields::<RegisterTaskDefinitionRequest>();
        assert!(fields[""].contains(&"containerDefinitions"), "{fields:?}");
        assert!(fields["containerDefinitions.0"].contains(&"command"));
        assert!(fields["containerDefinitions.0.portMappings.0"].contains(&"containerPort"));
    }

    #[test]
    fn an_unknown_key_is_named_with_the_nearest_known_one() {
        let error = deserialize::<CreateServiceRequest>(
            json!({"serviceName": "s", "taskDefinition": "t", "desiredCont": 2}),
        )
        .unwrap_err();
        assert_eq!(
            error,
            (
                "desiredCont".to_string(),
                "unknown field `desiredCont` (did you mean `desiredCount`?)".to_string()
            )
        );
        let error = deserialize::<RegisterTaskDefinitionRequest>(json!({
            "family": "f",
            "containerDefinitions": [
                {"name": "a", "image": "i"},
                {"name": "b", "image": "i", "comand": ["x"]}
            ]
        }))
        .unwrap_err();
        assert_eq!(error.0, "containerDefinitions[1].comand");
        assert_eq!(error.1, "unknown field `comand` (did you mean `command`?)");
        // Nothing near: no guess.
        let error = deserialize::<CreateServiceRequest>(json!({"serviceName": "s", "zzzqqq": 1}))
            .unwrap_err();
        assert_eq!(error.1, "unknown field `zzzqqq`");
    }

    #[test]
    fn known_keys_pass_and_type_errors_keep_their_path() {
        let ok: CreateServiceRequest =
            deserialize(json!({"serviceName": "s", "desiredCount": 2})).unwrap();
        assert_eq!(ok.desired_count, Some(2));
        let error =
            deserialize::<CreateServiceRequest>(json!({"serviceName": "s", "desiredCount": "two"}))
                .unwrap_err();
        assert_eq!(error.0, "desiredCount");
    }
}
