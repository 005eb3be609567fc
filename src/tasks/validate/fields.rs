//! Reading one field of a task's arguments: strings, booleans, bounded integers, enums,
//! durations, times, globs, unknown-field checks with did-you-mean. Every refusal names the
//! field and what is accepted. Pure: no clock, no store.

use super::*;

/// Parse `30s`, `15m`, `2h`, `1d` into seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let accepted = "accepted: a whole number followed by s, m, h or d, such as 30s, 15m, 2h, 1d";
    if t.len() < 2 {
        return Err(format!("\"{text}\" is not a duration; {accepted}"));
    }
    // The unit is the last character; it may be any character (even multi-byte), so split on a
    // character boundary, and the number is ASCII digits only (no sign, no spaces).
    let not_duration = || format!("\"{text}\" is not a duration; {accepted}");
    let unit = t.chars().next_back().ok_or_else(not_duration)?;
    let digits = &t[..t.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_duration());
    }
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(not_duration()),
    };
    let secs = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|s| *s <= 366 * 86_400)
        .ok_or_else(|| format!("\"{text}\" is longer than a year; {accepted}"))?;
    if secs == 0 {
        return Err(format!("\"{text}\" is zero; the shortest interval is 1s"));
    }
    Ok(secs)
}

/// Parse an RFC 3339 time, or a local `YYYY-MM-DDTHH:MM[:SS]` read in `tz`.
pub fn parse_time(text: &str, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let formats = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ];
    for f in formats {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text.trim(), f) {
            return match tz.from_local_datetime(&naive) {
                chrono::LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
                chrono::LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
                chrono::LocalResult::None => Err(format!(
                    "\"{text}\" does not exist in {tz} (skipped by a daylight-saving change); give an RFC 3339 time with an offset"
                )),
            };
        }
    }
    Err(format!(
        "\"{text}\" is not a time; accepted: RFC 3339 such as 2026-12-01T09:00:00+03:00 or 2026-12-01T06:00:00Z, or a local 2026-12-01T09:00 read in the task's timezone"
    ))
}

pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.len() > 100 => {
            format!("\"{}…\" ({} bytes)", crate::util::head(s, 60), s.len())
        }
        Value::String(s) => format!("\"{s}\""),
        Value::Null => "null".into(),
        other => {
            let text = other.to_string();
            if text.len() > 60 {
                format!(
                    "{}…",
                    &text[..text.char_indices().nth(57).map_or(text.len(), |(i, _)| i)]
                )
            } else {
                text
            }
        }
    }
}

pub(super) fn string_field(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<String>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => err(path, format!("{} is not a string", describe(other))),
    }
}

/// Refuse a text over `max` bytes, naming the field, the length and the limit. Checked before
/// anything else reads the value, so a huge one is never parsed, compared or quoted back.
pub(super) fn check_len(value: &str, path: &str, max: usize) -> Result<(), FieldError> {
    if value.len() > max {
        return err(
            path,
            format!("is {} bytes long; the limit is {max} bytes", value.len()),
        );
    }
    Ok(())
}

/// A string field of at most `max` bytes.
pub(super) fn text_field(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
    max: usize,
) -> Result<Option<String>, FieldError> {
    let value = string_field(obj, field, path)?;
    if let Some(v) = &value {
        check_len(v, path, max)?;
    }
    Ok(value)
}

pub(super) fn bool_field(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<bool>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => err(
            path,
            format!(
                "{} is not accepted; expected true or false",
                describe(other)
            ),
        ),
    }
}

pub(super) fn int_field(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => err(
                path,
                format!(
                    "{} is not accepted; expected a whole number from {min} to {max}",
                    describe(v)
                ),
            ),
        },
    }
}

pub(super) fn enum_field<'a>(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
    accepted: &[&'a str],
) -> Result<Option<&'a str>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match accepted.iter().find(|a| value.as_str() == Some(**a)) {
            Some(a) => Ok(Some(a)),
            None => err(
                path,
                format!(
                    "{} is not accepted; accepted: {}",
                    describe(value),
                    accepted.join(", ")
                ),
            ),
        },
    }
}

pub(super) fn reject_unknown(
    obj: &Map<String, Value>,
    accepted: &[&str],
    path_prefix: &str,
) -> Result<(), FieldError> {
    for key in obj.keys() {
        if !accepted.contains(&key.as_str()) {
            // A huge key is named by its start only, and no hint is looked for.
            let long = key.len() > 100;
            let name = if long {
                format!("{}…", crate::util::head(key, 60))
            } else {
                key.clone()
            };
            let field = if path_prefix.is_empty() {
                name
            } else {
                format!("{path_prefix}.{name}")
            };
            // A near miss of an accepted name (two edits for longer names, one for short ones).
            let reach = if key.chars().count() >= 5 { 2 } else { 1 };
            let hint = accepted
                .iter()
                .filter(|_| !long)
                .filter(|a| crate::util::edit_distance(a, key) <= reach)
                .min_by_key(|a| crate::util::edit_distance(a, key))
                .map(|a| format!("did you mean \"{a}\"? "))
                .unwrap_or_default();
            return err(
                &field,
                format!(
                    "unknown field; {hint}accepted fields here: {}",
                    accepted.join(", ")
                ),
            );
        }
    }
    Ok(())
}

pub(super) fn check_glob(pattern: &str, path: &str) -> Result<(), FieldError> {
    crate::util::PathGlob::new(pattern)
        .map(|_| ())
        .or_else(|e| {
            err(
                path,
                format!("\"{pattern}\" is not a valid glob ({e}); e.g. *.rs or src/**/*.py"),
            )
        })
}

pub(super) fn non_blank(
    value: Option<String>,
    path: &str,
    max_len: usize,
) -> Result<Option<String>, FieldError> {
    match value {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => err(path, "must not be empty"),
        Some(s) if s.len() > max_len => err(
            path,
            format!("is {} bytes long; the limit is {max_len} bytes", s.len()),
        ),
        Some(s) => Ok(Some(s)),
    }
}
