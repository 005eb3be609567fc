//! Reading `tools/call` arguments: required and optional strings, bounded integers, run ids,
//! unknown-argument checks. Every refusal names the field and what is accepted.

use crate::tasks::catalog::OpError;
use serde_json::{Map, Value};

pub(super) fn invalid(field: &str, message: impl Into<String>) -> OpError {
    OpError::Invalid(crate::tasks::validate::FieldError {
        field: field.into(),
        message: message.into(),
    })
}

pub(super) fn required_str<'a>(
    args: &'a Map<String, Value>,
    field: &str,
    what: &str,
) -> Result<&'a str, OpError> {
    match args.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        None | Some(Value::Null) => Err(invalid(field, format!("is required: {what}"))),
        Some(other) => Err(invalid(
            field,
            format!("{other} is not accepted; expected {what}"),
        )),
    }
}

pub(super) fn optional_str<'a>(
    args: &'a Map<String, Value>,
    field: &str,
    accepted: &[&str],
) -> Result<Option<&'a str>, OpError> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if accepted.is_empty() || accepted.contains(&s.as_str()) => {
            Ok(Some(s))
        }
        Some(other) => Err(invalid(
            field,
            if accepted.is_empty() {
                format!("{other} is not a string")
            } else {
                format!("{other} is not accepted; accepted: {}", accepted.join(", "))
            },
        )),
    }
}

pub(super) fn optional_int(
    args: &Map<String, Value>,
    field: &str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, OpError> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(
                field,
                format!("{v} is not accepted; expected a whole number from {min} to {max}"),
            )),
        },
    }
}

pub(super) fn only_fields(args: &Map<String, Value>, accepted: &[&str]) -> Result<(), OpError> {
    match args.keys().find(|k| !accepted.contains(&k.as_str())) {
        Some(k) => Err(invalid(
            k,
            format!("unknown argument; accepted: {}", accepted.join(", ")),
        )),
        None => Ok(()),
    }
}

/// `runId`: a whole number (or its decimal string).
pub(super) fn run_id_arg(args: &Map<String, Value>) -> Result<i64, OpError> {
    match args.get("runId") {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|i| i >= 1) => Ok(n.as_i64().unwrap_or(0)),
        Some(Value::String(s)) if s.parse::<i64>().is_ok_and(|i| i >= 1) => {
            Ok(s.parse().unwrap_or(0))
        }
        Some(other) => Err(invalid(
            "runId",
            format!("{other} is not accepted; expected a run id, a whole number such as 42"),
        )),
        None => Err(invalid(
            "runId",
            "is required: a run id from claudecron_get_history",
        )),
    }
}
