//! Validating a task's `expect` (the dead-man alert): `{"within": "26h"}` for any task but a
//! `once` one, or `{"grace": "1h"}` for a cron or interval task; every refusal says what is
//! accepted. Pure: no clock, no store.

use super::*;
use crate::tasks::model::Expect;

const EXAMPLE: &str = "{\"within\": \"26h\"} (a successful run at least every 26 hours) or, for a cron or interval task, {\"grace\": \"1h\"} (a successful run within 1 hour of each fire time)";

/// The `expect` field: exactly one of `within` and `grace`, each a duration from 1s to 366d;
/// `grace` only where a schedule says when runs are due; none on a `once` task.
pub(super) fn expect_field(
    obj: &Map<String, Value>,
    trigger: &Trigger,
) -> Result<Option<Expect>, FieldError> {
    let e = match obj.get("expect") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(e)) => e,
        Some(other) => {
            return err(
                "expect",
                format!("{} is not accepted; e.g. {EXAMPLE}", describe(other)),
            )
        }
    };
    reject_unknown(e, &["within", "grace"], "expect")?;
    if matches!(trigger, Trigger::Once { .. }) {
        return err(
            "expect",
            "is for tasks that run again and again; a once task runs one time (its run's own notify tells how it went)",
        );
    }
    let duration = |key: &str| -> Result<Option<String>, FieldError> {
        let path = format!("expect.{key}");
        let Some(text) = text_field(e, key, &path, limits::WORD)? else {
            return Ok(None);
        };
        let text = text.trim().to_string();
        parse_duration(&text).or_else(|why| err(&path, format!("{why}; from 1s to 366d")))?;
        Ok(Some(text))
    };
    let within = duration("within")?;
    let grace = duration("grace")?;
    match (&within, &grace) {
        (Some(_), Some(_)) => err(
            "expect",
            "give within or grace, not both; within: a success at least this often; grace: a success this long after each fire time",
        ),
        (None, None) => err("expect", format!("give within or grace, e.g. {EXAMPLE}")),
        (None, Some(_)) if !matches!(trigger, Trigger::Cron { .. } | Trigger::Interval { .. }) => {
            err(
                "expect.grace",
                format!(
                    "needs a cron schedule or an interval trigger to count from (this task's trigger is {}); give expect.within instead, e.g. {{\"within\": \"26h\"}}",
                    trigger.kind().as_str()
                ),
            )
        }
        _ => Ok(Some(Expect { within, grace })),
    }
}
