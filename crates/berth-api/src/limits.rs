//! How large and deep a request may be, checked at the API edge before any field is
//! read, so that nothing berth accepts can grow past what its store reads back.
//!
//! serde_json reads at most 128 levels of nesting, and a stored record wraps a request
//! in a few levels of its own (a task wraps its task definition, which wraps the
//! request's raw fields): a request that nests deeper than [`MAX_JSON_DEPTH`] is
//! refused, far inside that. Strings, lists and maps are bounded the same way; the
//! rules of particular fields (50 tags, 255-character names, CPU and memory ranges)
//! live with their validation in berth-core.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The deepest nesting of objects and lists a request may have. ECS's deepest shapes
/// (a container's `linuxParameters.capabilities.add`, `firelensConfiguration.options`)
/// nest about six levels.
pub const MAX_JSON_DEPTH: usize = 32;
/// The longest string, in bytes, anywhere in a request (ECS bounds a whole task
/// definition to 64 KiB).
pub const MAX_STRING_BYTES: usize = 64 * 1024;
/// The most elements of one list, or members of one object, in a request.
pub const MAX_COLLECTION_LEN: usize = 1000;

/// A request that is too large or too deep: where, and which bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    /// The path of the offending value, e.g. `containerDefinitions[0].command[3]`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "the request {}", self.message)
        } else {
            write!(f, "field '{}' {}", self.path, self.message)
        }
    }
}

/// Why an awsJson body could not be read as a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON at all (ECS's `SerializationException`).
    Syntax(String),
    /// JSON beyond the bounds above.
    Shape(ShapeError),
    /// A field of the wrong type: its path and what is wrong.
    Field { path: String, message: String },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Syntax(message) => {
                write!(f, "the request body is not valid JSON: {message}")
            }
            DecodeError::Shape(error) => error.fmt(f),
            DecodeError::Field { path, message } => write!(f, "field '{path}': {message}"),
        }
    }
}

/// Reads an awsJson request body: valid JSON (an empty body is `{}`), within the
/// bounds above, then the request type, naming the field at fault. The one decoder of
/// every awsJson request berth serves.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::Syntax(e.to_string()))?;
    check_shape(&value).map_err(DecodeError::Shape)?;
    serde_path_to_error::deserialize::<_, T>(value).map_err(|error| DecodeError::Field {
        path: error.path().to_string(),
        message: error.into_inner().to_string(),
    })
}

/// Checks a parsed request against the bounds above.
pub fn check_shape(value: &Value) -> Result<(), ShapeError> {
    let mut path = String::new();
    check(value, 0, &mut path)
}

fn check(value: &Value, depth: usize, path: &mut String) -> Result<(), ShapeError> {
    let error = |path: &str, message: String| ShapeError {
        path: path.to_string(),
        message,
    };
    match value {
        Value::String(text) if text.len() > MAX_STRING_BYTES => Err(error(
            path,
            format!(
                "is {} bytes long; berth takes strings of at most {MAX_STRING_BYTES} bytes",
                text.len()
            ),
        )),
        Value::Array(_) | Value::Object(_) if depth >= MAX_JSON_DEPTH => Err(error(
            path,
            format!("nests deeper than {MAX_JSON_DEPTH} levels of objects and lists"),
        )),
        Value::Array(items) => {
            if items.len() > MAX_COLLECTION_LEN {
                return Err(error(
                    path,
                    format!(
                        "has {} elements; berth takes lists of at most {MAX_COLLECTION_LEN}",
                        items.len()
                    ),
                ));
            }
            for (index, item) in items.iter().enumerate() {
                let before = path.len();
                path.push_str(&format!("[{index}]"));
                check(item, depth + 1, path)?;
                path.truncate(before);
            }
            Ok(())
        }
        Value::Object(members) => {
            if members.len() > MAX_COLLECTION_LEN {
                return Err(error(
                    path,
                    format!(
                        "has {} members; berth takes objects of at most {MAX_COLLECTION_LEN}",
                        members.len()
                    ),
                ));
            }
            for (key, member) in members {
                let before = path.len();
                if key.len() > MAX_STRING_BYTES {
                    return Err(error(
                        path,
                        format!("has a member name of {} bytes", key.len()),
                    ));
                }
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                check(member, depth + 1, path)?;
                path.truncate(before);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        let mut value = json!(1);
        for _ in 0..levels {
            value = json!([value]);
        }
        value
    }

    #[test]
    fn the_deepest_allowed_request_passes_and_one_level_more_is_named() {
        // The request object itself is the first level.
        let deepest = json!({ "ephemeralStorage": nested(MAX_JSON_DEPTH - 1) });
        assert_eq!(check_shape(&deepest), Ok(()));
        let deeper = json!({ "ephemeralStorage": nested(MAX_JSON_DEPTH) });
        let error = check_shape(&deeper).unwrap_err();
        assert!(error.path.starts_with("ephemeralStorage[0]"), "{error}");
        assert!(error.to_string().contains("deeper than 32"), "{error}");
    }

    #[test]
    fn long_strings_long_lists_and_big_objects_are_refused_by_path() {
        let long = "x".repeat(MAX_STRING_BYTES + 1);
        let error =
            check_shape(&json!({"containerDefinitions": [{"command": ["sh", long]}]})).unwrap_err();
        assert_eq!(error.path, "containerDefinitions[0].command[1]");
        let fits = "x".repeat(MAX_STRING_BYTES);
        assert_eq!(check_shape(&json!({ "family": fits })), Ok(()));

        let list: Vec<u32> = (0..=MAX_COLLECTION_LEN as u32).collect();
        let error = check_shape(&json!({ "tasks": list })).unwrap_err();
        assert_eq!(error.path, "tasks");
        assert!(error.message.contains("1001 elements"), "{error}");

        let members: serde_json::Map<String, Value> = (0..=MAX_COLLECTION_LEN)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        let error = check_shape(&json!({ "dockerLabels": members })).unwrap_err();
        assert_eq!(error.path, "dockerLabels");
    }
}
