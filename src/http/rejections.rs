//! What was wrong with a request that a body, query or path extractor
//! refused, said in the request's terms (the JSON member, the query
//! parameter, the registry name in the path) rather than in the words of
//! actix-web and serde. The problem codes stay those of `crate::problem`.

use actix_web::HttpRequest;
use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use serde_json::error::Category;

use crate::problem::Error;

/// A JSON body the extractor refused.
pub(super) fn json(error: JsonPayloadError, limit: usize) -> Error {
    match error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            Error::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => Error::UnsupportedMediaType,
        JsonPayloadError::Deserialize(error) => Error::InvalidPayload(json_body(&error)),
        JsonPayloadError::Payload(error) => unreadable(Some(&error), limit),
        _ => Error::InvalidPayload("the body could not be read".to_owned()),
    }
}

/// A body that could not be read to its end (`None`: for another reason
/// than the payload's).
pub(super) fn unreadable(error: Option<&PayloadError>, limit: usize) -> Error {
    Error::InvalidPayload(
        match error {
            Some(PayloadError::Overflow) => return Error::PayloadTooLarge { limit },
            Some(PayloadError::Incomplete(_)) => "the body ended before it was complete",
            Some(PayloadError::EncodingCorrupted) => {
                "the body cannot be decoded as its Content-Encoding says"
            }
            _ => "the body could not be read",
        }
        .to_owned(),
    )
}

/// A query string the extractor refused.
pub(super) fn query(error: QueryPayloadError) -> Error {
    let reason = match error {
        QueryPayloadError::Deserialize(error) => in_request_terms(&error.to_string(), "parameter"),
        _ => "it cannot be read".to_owned(),
    };
    Error::InvalidQuery(reason)
}

/// A path whose segments the extractor refused. The only typed segment is a
/// registry name, whose reason starts with the name as given.
pub(super) fn path(error: PathError, request: &HttpRequest) -> Error {
    let reason = match error {
        PathError::Deserialize(error) => error.to_string(),
        _ => "it cannot be read".to_owned(),
    };
    Error::InvalidPath(match request.match_info().get("registry") {
        Some(_) => format!("the registry name {reason}"),
        None => reason,
    })
}

/// What is wrong with a JSON body, from serde_json's error.
pub(super) fn json_body(error: &serde_json::Error) -> String {
    let (line, column) = (error.line(), error.column());
    let message = error.to_string();
    let message = message
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&message);
    match error.classify() {
        Category::Eof if line <= 1 && column == 0 => {
            "the body is empty; send a JSON object".to_owned()
        }
        Category::Eof => "the body ends before its JSON is complete".to_owned(),
        Category::Syntax if message == "trailing characters" => format!(
            "the body holds more than one JSON value (more follows at line {line}, column {column})"
        ),
        Category::Syntax => format!("the body is not JSON (line {line}, column {column})"),
        Category::Data
            if message.contains("expected struct") || message.contains("expected a map") =>
        {
            "the body must be a JSON object".to_owned()
        }
        Category::Data => match message.strip_prefix("invalid type: ") {
            Some(rest) => format!(
                "the value at line {line}, column {column} has the wrong type: {}",
                rest.replacen(", expected ", " where the endpoint expects ", 1)
                    .replace("a sequence", "an array")
                    .replace("a map", "an object")
            ),
            None => in_request_terms(message, "member"),
        },
        Category::Io => "the body could not be read".to_owned(),
    }
}

/// A JSON value read as `T`, every unknown member named: serde stops at
/// the first, so each one it names is taken out and the value read again.
pub(super) fn every_unknown_member<T: serde::de::DeserializeOwned>(
    mut value: serde_json::Value,
) -> Result<T, Error> {
    let mut unknown = Vec::new();
    loop {
        let error = match serde_json::from_value::<T>(value.clone()) {
            Ok(parsed) if unknown.is_empty() => return Ok(parsed),
            Ok(_) => break,
            Err(error) => error,
        };
        let message = error.to_string();
        let name = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned());
        match name {
            Some(name) if unknown.len() < 64 && remove_member(&mut value, &name) => {
                unknown.push(format!("\"{name}\""));
            }
            _ if unknown.is_empty() => return Err(Error::InvalidPayload(json_body(&error))),
            _ => break,
        }
    }
    Err(Error::InvalidPayload(format!(
        "unknown member(s) {}",
        unknown.join(", ")
    )))
}

/// Removes the first member named `name`, depth first; whether there was one.
fn remove_member(value: &mut serde_json::Value, name: &str) -> bool {
    match value {
        serde_json::Value::Object(members) => {
            members.remove(name).is_some() || members.values_mut().any(|v| remove_member(v, name))
        }
        serde_json::Value::Array(items) => items.iter_mut().any(|v| remove_member(v, name)),
        _ => false,
    }
}

/// What is wrong with a form-encoded body, from serde's error.
pub(super) fn form_body(error: &serde_urlencoded::de::Error) -> String {
    in_request_terms(&error.to_string(), "field")
}

/// serde's messages about fields, with the request's word for them
/// (`member`, `parameter`, `field`) and the name in double quotes.
fn in_request_terms(message: &str, noun: &str) -> String {
    let quoted = |name: &str| format!("\"{}\"", name.trim_matches('`'));
    if let Some(name) = message.strip_prefix("missing field ") {
        format!("the {noun} {} is missing", quoted(name))
    } else if let Some(name) = message.strip_prefix("duplicate field ") {
        format!("the {noun} {} is given more than once", quoted(name))
    } else if let Some(rest) = message.strip_prefix("unknown field ") {
        match rest.split_once(", expected ") {
            Some((name, known)) => format!(
                "unknown {noun} {} (expected {})",
                quoted(name),
                known.replace('`', "\"")
            ),
            None => format!(
                "unknown {noun} {}",
                quoted(rest.split(',').next().unwrap_or(rest))
            ),
        }
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> String {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Request {
            token: String,
            #[serde(default)]
            packages: Vec<String>,
        }
        json_body(&serde_json::from_str::<Request>(json).unwrap_err())
    }

    #[test]
    fn json_errors_in_the_request_terms() {
        for (json, expected) in [
            ("", "the body is empty; send a JSON object"),
            (
                "{\"token\": \"x\"",
                "the body ends before its JSON is complete",
            ),
            ("not json", "the body is not JSON (line 1, column 2)"),
            (
                "{\"token\": \"x\"} {}",
                "the body holds more than one JSON value (more follows at line 1, column 16)",
            ),
            ("[]", "the body must be a JSON object"),
            ("\"token\"", "the body must be a JSON object"),
            ("{}", "the member \"token\" is missing"),
            (
                "{\"token\": \"x\", \"token\": \"y\"}",
                "the member \"token\" is given more than once",
            ),
            (
                "{\"token\": \"x\", \"extra\": 1}",
                "unknown member \"extra\" (expected \"token\" or \"packages\")",
            ),
            (
                "{\"token\": 5}",
                "the value at line 1, column 11 has the wrong type: integer `5` where the \
                 endpoint expects a string",
            ),
        ] {
            assert_eq!(body(json), expected, "{json}");
        }
    }
}
