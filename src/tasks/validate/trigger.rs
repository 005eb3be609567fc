//! Validating a task's `trigger` object: cron, file-watch, hook, interval, once, after and
//! manual, each with its own fields. Pure: the caller passes `now` and the task lookup.

use super::*;

pub(super) fn trigger(
    t: &Map<String, Value>,
    tz: chrono_tz::Tz,
    ctx: &Context,
) -> Result<Trigger, FieldError> {
    let kind = match text_field(t, "type", "trigger.type", limits::WORD)? {
        Some(k) => k,
        None => {
            return err(
                "trigger.type",
                format!("is required; accepted: {TRIGGER_TYPES}"),
            )
        }
    };
    // File saves come in bursts (default 1 s of quiet); each hook event counts (default 0).
    let debounce = |t: &Map<String, Value>, default: u64| -> Result<u64, FieldError> {
        Ok(int_field(t, "debounce_ms", "trigger.debounce_ms", 0, 3_600_000)?.unwrap_or(default))
    };
    match kind.as_str() {
        "cron" => {
            reject_unknown(t, &["type", "schedule", "timezone"], "trigger")?;
            let expr = text_field(t, "schedule", "trigger.schedule", limits::PATTERN)?.ok_or_else(
                || FieldError {
                    field: "trigger.schedule".into(),
                    message: "is required for a cron trigger, e.g. \"0 9 * * 1-5\"".into(),
                },
            )?;
            check_schedule(&expr, ctx).or_else(|e| err("trigger.schedule", e))?;
            Ok(Trigger::Cron {
                schedule: expr.trim().to_string(),
            })
        }
        "file-watch" | "file_watch" => {
            reject_unknown(
                t,
                &[
                    "type",
                    "path",
                    "pattern",
                    "recursive",
                    "events",
                    "debounce_ms",
                ],
                "trigger",
            )?;
            let path =
                text_field(t, "path", "trigger.path", limits::PATH)?.ok_or_else(|| FieldError {
                    field: "trigger.path".into(),
                    message: "is required: an absolute file or directory path".into(),
                })?;
            if !path.starts_with('/') {
                return err(
                    "trigger.path",
                    format!("\"{path}\" is not an absolute path; e.g. /etc/nginx/nginx.conf"),
                );
            }
            if path.contains('\0') {
                return err("trigger.path", "contains a NUL byte");
            }
            let pattern = text_field(t, "pattern", "trigger.pattern", limits::PATTERN)?;
            if let Some(p) = &pattern {
                check_glob(p, "trigger.pattern")?;
            }
            let recursive = bool_field(t, "recursive", "trigger.recursive")?.unwrap_or(true);
            let events = match t.get("events") {
                None | Some(Value::Null) => {
                    vec![FileEvent::Create, FileEvent::Modify, FileEvent::Remove]
                }
                Some(Value::Array(items)) if !items.is_empty() => {
                    let mut events = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let e = match item.as_str() {
                            Some("create") => FileEvent::Create,
                            Some("modify") => FileEvent::Modify,
                            Some("remove") => FileEvent::Remove,
                            _ => {
                                return err(
                                    &format!("trigger.events[{i}]"),
                                    format!(
                                        "{} is not accepted; accepted: create, modify, remove",
                                        describe(item)
                                    ),
                                )
                            }
                        };
                        if !events.contains(&e) {
                            events.push(e);
                        }
                    }
                    events.sort();
                    events
                }
                Some(other) => {
                    return err(
                        "trigger.events",
                        format!(
                            "{} is not accepted; a non-empty list of create, modify, remove",
                            describe(other)
                        ),
                    )
                }
            };
            Ok(Trigger::FileWatch {
                path,
                pattern,
                recursive,
                events,
                debounce_ms: debounce(t, 1000)?,
            })
        }
        "hook" => {
            reject_unknown(
                t,
                &["type", "event", "matcher", "file_pattern", "debounce_ms"],
                "trigger",
            )?;
            let event =
                text_field(t, "event", "trigger.event", limits::WORD)?.ok_or_else(|| {
                    FieldError {
                        field: "trigger.event".into(),
                        message: format!("is required; accepted: {}", HOOK_EVENTS.join(", ")),
                    }
                })?;
            if !HOOK_EVENTS.contains(&event.as_str()) {
                let hint = HOOK_EVENTS.iter().find(|e| e.eq_ignore_ascii_case(&event));
                let message = match hint {
                    Some(h) => format!(
                        "\"{event}\" is not a Claude Code hook event; did you mean \"{h}\"?"
                    ),
                    None => format!(
                        "\"{event}\" is not a Claude Code hook event; accepted: {}",
                        HOOK_EVENTS.join(", ")
                    ),
                };
                return err("trigger.event", message);
            }
            let matcher = text_field(t, "matcher", "trigger.matcher", limits::PATTERN)?
                .filter(|m| !m.is_empty());
            if let Some(m) = &matcher {
                regex::Regex::new(m).or_else(|e| {
                    err("trigger.matcher", format!("\"{m}\" is not a valid regular expression ({}); e.g. Edit|Write or mcp__.*", e.to_string().lines().last().unwrap_or("")))
                })?;
            }
            let file_pattern =
                text_field(t, "file_pattern", "trigger.file_pattern", limits::PATTERN)?;
            if let Some(p) = &file_pattern {
                check_glob(p, "trigger.file_pattern")?;
            }
            Ok(Trigger::Hook {
                event,
                matcher,
                file_pattern,
                debounce_ms: debounce(t, 0)?,
            })
        }
        "interval" => {
            reject_unknown(t, &["type", "every", "start_at"], "trigger")?;
            let every =
                text_field(t, "every", "trigger.every", limits::WORD)?.ok_or_else(|| {
                    FieldError {
                        field: "trigger.every".into(),
                        message: "is required: a duration such as 30s, 15m, 2h, 1d".into(),
                    }
                })?;
            let every_seconds = parse_duration(&every).or_else(|e| err("trigger.every", e))?;
            let start_at = match text_field(t, "start_at", "trigger.start_at", limits::WORD)? {
                Some(s) => parse_time(&s, tz).or_else(|e| err("trigger.start_at", e))?,
                None => ctx.now,
            };
            Ok(Trigger::Interval {
                every: every.trim().to_string(),
                every_seconds,
                start_at: rfc3339(start_at),
            })
        }
        "once" => {
            reject_unknown(t, &["type", "at"], "trigger")?;
            let at =
                text_field(t, "at", "trigger.at", limits::WORD)?.ok_or_else(|| FieldError {
                    field: "trigger.at".into(),
                    message: "is required: an RFC 3339 time such as 2026-12-01T09:00:00Z".into(),
                })?;
            let when = parse_time(&at, tz).or_else(|e| err("trigger.at", e))?;
            if when <= ctx.now && ctx.self_id.is_none() {
                return err(
                    "trigger.at",
                    format!(
                        "\"{at}\" is in the past (now is {}); give a future time",
                        rfc3339(ctx.now)
                    ),
                );
            }
            Ok(Trigger::Once { at: rfc3339(when) })
        }
        "after" => {
            reject_unknown(t, &["type", "task", "on"], "trigger")?;
            let upstream =
                text_field(t, "task", "trigger.task", limits::TASK_REF)?.ok_or_else(|| {
                    FieldError {
                        field: "trigger.task".into(),
                        message: "is required: the id or name of the task to follow".into(),
                    }
                })?;
            let found = ctx.lookup.find(&upstream).ok_or_else(|| FieldError {
                field: "trigger.task".into(),
                message: format!("no task has the id or name \"{upstream}\"; list them with claudecron_list_tasks"),
            })?;
            if Some(found.id.as_str()) == ctx.self_id {
                return err("trigger.task", "a task cannot run after itself");
            }
            // Walk the upstream chain: reaching this task again would be an endless loop.
            if let Some(self_id) = ctx.self_id {
                let mut cursor = found.after.clone();
                let mut hops = 0;
                while let Some(id) = cursor {
                    if id == self_id {
                        return err(
                            "trigger.task",
                            format!(
                                "running after \"{}\" would make a cycle back to this task",
                                found.name
                            ),
                        );
                    }
                    hops += 1;
                    if hops > 1000 {
                        break;
                    }
                    cursor = ctx.lookup.find(&id).and_then(|r| r.after);
                }
            }
            let on = match enum_field(t, "on", "trigger.on", &["success", "failure", "always"])? {
                Some("failure") => AfterOn::Failure,
                Some("always") => AfterOn::Always,
                _ => AfterOn::Success,
            };
            Ok(Trigger::After { task: found.id, on })
        }
        "manual" => {
            reject_unknown(t, &["type"], "trigger")?;
            Ok(Trigger::Manual)
        }
        "webhook" => {
            reject_unknown(t, &["type"], "trigger")?;
            Ok(Trigger::Webhook)
        }
        other => err(
            "trigger.type",
            format!("\"{other}\" is not accepted; accepted: {TRIGGER_TYPES}"),
        ),
    }
}
