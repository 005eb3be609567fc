//! Run notifications: which event a run's end is for its task's `notify.on` (failure, success,
//! always, recovered, changed; a run whose first output line is `CLAUDECRON_SILENT` stays
//! quiet) and the task events the engine reports (missed fires, auto-pause, dead-man overdue
//! and back on time), the message in each preset's documented shape (Slack and Discord
//! incoming webhooks, Telegram's sendMessage, ntfy, the generic JSON), and its delivery on a
//! thread of its own (3 attempts, 1 s then 2 s apart, 10 s each) recorded on the run as
//! `details.notify` (a dead-man message: on the task's dead-man state). It never
//! delays or changes the run's outcome, and never records or sends the URL (it may hold a
//! token) or anything but the run's own facts.

use crate::config::NotifyChannel;
use crate::store::Store;
use crate::tasks::model::{Expect, Notify, NotifyOn, NotifyPreset, Task};
use crate::tasks::runs::RunStatus;
use crate::util::{rfc3339, rfc3339_millis, tail};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// The first output line that keeps a run quiet.
pub const SILENT: &str = "CLAUDECRON_SILENT";
/// Output shown in a chat message, at most (the end of it).
const EXCERPT: usize = 500;

/// The event a run's end is, for a task that wants `on`; None: nothing to send. `previous` is
/// the status and output of the task's last run that ran to an end before this one.
pub fn event_for(
    on: &[NotifyOn],
    status: RunStatus,
    output: &str,
    previous: Option<(RunStatus, &str)>,
) -> Option<&'static str> {
    let success = status == RunStatus::Success;
    let recovered = success && previous.is_some_and(|(s, _)| s != RunStatus::Success);
    let changed = previous.is_some_and(|(_, out)| out != output);
    let wants = |e: NotifyOn| on.contains(&e);
    if recovered && wants(NotifyOn::Recovered) {
        Some("recovered")
    } else if changed && wants(NotifyOn::Changed) {
        Some("changed")
    } else if !success && (wants(NotifyOn::Failure) || wants(NotifyOn::Always)) {
        Some("failure")
    } else if success && (wants(NotifyOn::Success) || wants(NotifyOn::Always)) {
        Some("success")
    } else {
        None
    }
}

/// The run asked to stay quiet: its first output line is `CLAUDECRON_SILENT`.
pub fn is_silent(output: &str) -> bool {
    output.lines().next().is_some_and(|l| l.trim() == SILENT)
}

/// What a message says about the run.
pub struct Facts<'a> {
    pub task: &'a Task,
    pub run_id: i64,
    pub status: RunStatus,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
    pub output: &'a str,
}

/// The short human text: task, status, event, reason, duration, run id, output excerpt.
pub fn text(f: &Facts, event: &str) -> String {
    let icon = if f.status == RunStatus::Success {
        "✅"
    } else {
        "❌"
    };
    let mut out = match event {
        "paused" => format!(
            "⏸ claudecron: task \"{}\" was paused after run {} {} (paused)",
            f.task.spec.name, f.run_id, f.status
        ),
        "missed" => format!(
            "⚠️ claudecron: task \"{}\" missed fire times (missed), run {}",
            f.task.spec.name, f.run_id
        ),
        _ => format!(
            "{icon} claudecron: task \"{}\" {} ({event}) in {:.1} s, run {}",
            f.task.spec.name,
            f.status,
            f.duration_ms as f64 / 1000.0,
            f.run_id
        ),
    };
    if let Some(reason) = f.error {
        out.push_str(&format!("\nreason: {}", tail(reason, 300)));
    }
    let excerpt = tail(f.output.trim_end(), EXCERPT);
    if !excerpt.is_empty() {
        out.push_str(&format!("\n{excerpt}"));
    }
    out
}

/// Slack's mrkdwn: `&`, `<`, `>` escaped, so output cannot mention a channel or forge a link.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Where a task's notification goes: its own url and preset, or a configured channel's (with
/// the channel's HMAC secret).
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub preset: NotifyPreset,
    pub chat_id: Option<String>,
    pub secret: Option<String>,
}

/// The target of `notify`: its channel from `channels`, or its own url (Err: the channel is
/// not configured any more).
pub fn target(notify: &Notify, channels: &[NotifyChannel]) -> Result<Target, String> {
    match &notify.channel {
        None => Ok(Target {
            url: notify.url.clone(),
            preset: notify.preset,
            chat_id: notify.chat_id.clone(),
            secret: None,
        }),
        Some(name) => channels
            .iter()
            .find(|c| &c.name == name)
            .map(|c| Target {
                url: c.url.clone(),
                preset: c.preset,
                chat_id: c.chat_id.clone(),
                secret: c.secret.clone(),
            })
            .ok_or_else(|| format!("notify channel \"{name}\" is not configured on this server")),
    }
}

/// `sha256=HEX`: the HMAC-SHA256 of the body with the channel's secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// A message ready to POST: body, content type, extra headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

/// The message in the preset's shape; `generic` is the run's JSON with `alert` = the event.
pub fn message(notify: &Target, f: &Facts, event: &str, generic: &Value) -> Message {
    let title = format!("claudecron: {} {}", f.task.spec.name, f.status);
    let ok = f.status == RunStatus::Success;
    shaped(notify, text(f, event), &title, ok, event, generic)
}

/// `text` in the preset's shape (`title`: ntfy's Title; `ok`: a good-news priority and tag);
/// the generic preset sends `generic` with `alert` = the event instead.
fn shaped(
    notify: &Target,
    text: String,
    title: &str,
    ok: bool,
    event: &str,
    generic: &Value,
) -> Message {
    let json_body = |v: Value| Message {
        body: v.to_string().into_bytes(),
        content_type: "application/json",
        headers: Vec::new(),
    };
    match notify.preset {
        NotifyPreset::Generic => {
            let mut body = generic.clone();
            body["alert"] = event.into();
            let mut msg = json_body(body);
            if let Some(secret) = &notify.secret {
                msg.headers
                    .push(("X-Claudecron-Signature", signature(secret, &msg.body)));
            }
            msg
        }
        NotifyPreset::Slack => json_body(json!({"text": slack_escape(&text)})),
        NotifyPreset::Discord => json_body(json!({
            "content": crate::util::head(&text, 2000),
            "allowed_mentions": {"parse": []},
        })),
        NotifyPreset::Telegram => json_body(json!({
            "chat_id": notify.chat_id,
            "text": crate::util::head(&text, 4096),
            "disable_web_page_preview": true,
        })),
        NotifyPreset::Ntfy => Message {
            body: text.into_bytes(),
            content_type: "text/plain; charset=utf-8",
            headers: vec![
                (
                    "Title",
                    title
                        .chars()
                        .filter(|c| !c.is_control() && c.is_ascii())
                        .collect(),
                ),
                ("Priority", if ok { "default" } else { "high" }.into()),
                ("Tags", if ok { "white_check_mark" } else { "x" }.into()),
            ],
        },
    }
}

/// A task event the engine reports (`missed`, `paused`), sent when the task's `notify.on`
/// asks for it (`paused` also with `failure` or `always`); the outcome is recorded on
/// `f.run_id` (the skipped row of the first missed fire, the run that paused the task) under
/// `notify_EVENT`.
pub fn task_event(f: &Facts, event: &'static str, channels: &[NotifyChannel], db_path: &Path) {
    let Some(notify) = f.task.spec.notify.as_ref() else {
        return;
    };
    let wants = |o: NotifyOn| notify.on.contains(&o);
    let wanted = match event {
        "missed" => wants(NotifyOn::Missed),
        "paused" => wants(NotifyOn::Paused) || wants(NotifyOn::Failure) || wants(NotifyOn::Always),
        _ => false,
    };
    if !wanted {
        return;
    }
    let generic = json!({
        "event": if event == "paused" { "task_paused" } else { "fires_missed" },
        "task": {"id": f.task.id, "name": f.task.spec.name, "type": f.task.spec.task_type.as_str()},
        "run": {"id": f.run_id, "status": f.status, "error": f.error},
        "output_excerpt": tail(f.output, 2000),
    });
    send(notify, channels, f, event, &generic, db_path);
}

/// A dead-man event: the task had no successful run within its `expect` window (`missed`), or
/// its first success after that (`recovered`, "back on time").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadman<'a> {
    /// Overdue since `overdue_since`; the window started at `start`; `reason`: what is known
    /// about why (everything is paused).
    Missed {
        start: DateTime<Utc>,
        overdue_since: DateTime<Utc>,
        reason: Option<&'a str>,
    },
    /// Run `run_id` succeeded after the task had been overdue since `overdue_since`.
    Recovered {
        run_id: i64,
        output: &'a str,
        overdue_since: DateTime<Utc>,
    },
}

/// The short human text of a dead-man event.
pub fn deadman_text(task: &Task, event: Deadman) -> String {
    let name = &task.spec.name;
    match event {
        Deadman::Missed {
            start,
            overdue_since,
            reason,
        } => {
            let expected = match task.spec.expect.as_ref() {
                Some(Expect {
                    within: Some(w), ..
                }) => format!("a success at least every {w}"),
                Some(Expect { grace: Some(g), .. }) => {
                    format!("a success within {g} of each fire time")
                }
                _ => "a success".into(),
            };
            let mut text = format!(
                "⚠️ claudecron: task \"{name}\" has had no successful run since {} (expected: {expected}); overdue since {} (missed)",
                rfc3339(start),
                rfc3339(overdue_since)
            );
            if let Some(reason) = reason {
                text.push_str(&format!("\nreason: {}", tail(reason, 300)));
            }
            text
        }
        Deadman::Recovered {
            run_id,
            output,
            overdue_since,
        } => {
            let mut text = format!(
                "✅ claudecron: task \"{name}\" is back on time: run {run_id} succeeded after it had been overdue since {} (recovered)",
                rfc3339(overdue_since)
            );
            let excerpt = tail(output.trim_end(), EXCERPT);
            if !excerpt.is_empty() {
                text.push_str(&format!("\n{excerpt}"));
            }
            text
        }
    }
}

/// Send a dead-man event when the task's `notify.on` asks for it: `missed` for both, or
/// `recovered` for the recovery. The outcome is recorded on the task's dead-man state.
pub fn deadman_event(task: &Task, event: Deadman, channels: &[NotifyChannel], db_path: &Path) {
    let Some(notify) = task.spec.notify.as_ref() else {
        return;
    };
    let wants = |o: NotifyOn| notify.on.contains(&o);
    let (name, ok, json_event) = match event {
        Deadman::Missed { .. } => ("missed", false, "deadman_missed"),
        Deadman::Recovered { .. } => ("recovered", true, "deadman_recovered"),
    };
    if !(wants(NotifyOn::Missed) || (ok && wants(NotifyOn::Recovered))) {
        return;
    }
    let (run, overdue_since, start, reason) = match event {
        Deadman::Missed {
            start,
            overdue_since,
            reason,
        } => (Value::Null, overdue_since, Some(start), reason),
        Deadman::Recovered {
            run_id,
            overdue_since,
            ..
        } => (
            json!({"id": run_id, "status": "success"}),
            overdue_since,
            None,
            None,
        ),
    };
    let generic = json!({
        "event": json_event,
        "task": {"id": task.id, "name": task.spec.name, "type": task.spec.task_type.as_str()},
        "expect": task.spec.expect,
        "window_start": start.map(rfc3339_millis),
        "overdue_since": rfc3339_millis(overdue_since),
        "reason": reason,
        "run": run,
    });
    let at = RecordAt::Deadman(task.id.clone());
    let target = match target(notify, channels) {
        Ok(t) => t,
        Err(why) => return undeliverable(&at, name, &why, db_path),
    };
    let title = if ok {
        format!("claudecron: {} back on time", task.spec.name)
    } else {
        format!("claudecron: {} overdue", task.spec.name)
    };
    let msg = shaped(
        &target,
        deadman_text(task, event),
        &title,
        ok,
        name,
        &generic,
    );
    spawn_delivery(target, msg, name, at, db_path);
}

fn send(
    notify: &Notify,
    channels: &[NotifyChannel],
    f: &Facts,
    event: &'static str,
    generic: &Value,
    db_path: &Path,
) {
    let target = match target(notify, channels) {
        Ok(t) => t,
        Err(why) => return undeliverable(&RecordAt::Run(f.run_id), event, &why, db_path),
    };
    let msg = message(&target, f, event, generic);
    spawn_delivery(target, msg, event, RecordAt::Run(f.run_id), db_path);
}

/// Where a delivery's outcome is recorded: on a run's details (`notify`, or `notify_missed` /
/// `notify_paused` for task events), or on a task's dead-man state.
#[derive(Debug, Clone)]
enum RecordAt {
    Run(i64),
    Deadman(String),
}

impl RecordAt {
    fn write(&self, store: &Store, event: &str, outcome: &Value) -> crate::store::Result<()> {
        match self {
            RecordAt::Run(run_id) => {
                let key = match event {
                    "missed" | "paused" => format!("notify_{event}"),
                    _ => "notify".into(),
                };
                store.set_detail(*run_id, &key, outcome)
            }
            RecordAt::Deadman(task_id) => store.set_deadman_notify(task_id, outcome),
        }
    }

    /// How log lines name it.
    fn label(&self) -> String {
        match self {
            RecordAt::Run(run_id) => format!("run {run_id}"),
            RecordAt::Deadman(task_id) => format!("task {task_id} (dead-man)"),
        }
    }

    fn record(&self, event: &str, outcome: &Value, db_path: &Path) {
        let written = Store::open(db_path).and_then(|store| self.write(&store, event, outcome));
        if let Err(e) = written {
            log::warn!(
                "{}: the notification's outcome was not recorded: {e}",
                self.label()
            );
        }
    }
}

/// The target could not be found (a channel no longer configured): nothing sent, recorded.
fn undeliverable(at: &RecordAt, event: &str, why: &str, db_path: &Path) {
    log::warn!("{}: {why}; nothing sent", at.label());
    let outcome = json!({"status": "failed", "event": event, "attempts": 0, "error": why});
    at.record(event, &outcome, db_path);
}

fn spawn_delivery(target: Target, msg: Message, event: &'static str, at: RecordAt, db_path: &Path) {
    let db_path = db_path.to_path_buf();
    let label = at.label();
    let name = match &at {
        RecordAt::Run(run_id) => format!("notify-{run_id}"),
        RecordAt::Deadman(_) => "notify-deadman".into(),
    };
    let spawned = std::thread::Builder::new()
        .name(name)
        .spawn(move || deliver(&target.url, &msg, target.preset, event, &at, &db_path));
    if let Err(e) = spawned {
        log::error!("{label}: cannot start the notify thread: {e}");
    }
}

/// After a run's end: decide, build and send on a thread of its own; record the outcome.
pub fn after_run(
    f: &Facts,
    generic: &Value,
    channels: &[NotifyChannel],
    store: Option<&Store>,
    db_path: &Path,
) {
    let Some(notify) = f.task.spec.notify.as_ref() else {
        return;
    };
    let previous = if notify
        .on
        .iter()
        .any(|o| matches!(o, NotifyOn::Recovered | NotifyOn::Changed))
    {
        store.and_then(|s| s.previous_outcome(&f.task.id, f.run_id).ok().flatten())
    } else {
        None
    };
    let previous = previous.as_ref().map(|(s, o)| (*s, o.as_str()));
    let Some(event) = event_for(&notify.on, f.status, f.output, previous) else {
        return;
    };
    if is_silent(f.output) {
        record(
            store,
            f.run_id,
            &json!({"status": "silent", "event": event}),
        );
        return;
    }
    send(notify, channels, f, event, generic, db_path);
}

fn record(store: Option<&Store>, run_id: i64, outcome: &Value) {
    if let Some(Err(e)) = store.map(|s| s.set_detail(run_id, "notify", outcome)) {
        log::warn!("run {run_id}: the notification's outcome was not recorded: {e}");
    }
}

/// POST the message; 3 attempts, 10 s each, 1 s and 2 s apart. The outcome is logged and
/// recorded on the run (never the URL: it may carry a token).
fn deliver(
    url: &str,
    msg: &Message,
    preset: NotifyPreset,
    event: &str,
    at: &RecordAt,
    db_path: &Path,
) {
    let label = at.label();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut why = String::new();
    let mut attempts = 0;
    for attempt in 1..=3u64 {
        attempts = attempt;
        let mut req = agent
            .post(url)
            .header(
                "User-Agent",
                concat!("claudecron/", env!("CARGO_PKG_VERSION")),
            )
            .header("Content-Type", msg.content_type);
        for (k, v) in &msg.headers {
            req = req.header(*k, v);
        }
        match req.send(&msg.body[..]) {
            Ok(resp) if resp.status().is_success() => {
                log::info!(
                    "{label}: {event} notification delivered ({})",
                    preset.as_str()
                );
                why.clear();
                break;
            }
            Ok(resp) => why = format!("the receiver answered HTTP {}", resp.status().as_u16()),
            // The URL may hold a token: never in the log or the record.
            Err(e) => why = e.to_string().replace(url, "(the notify url)"),
        }
        log::warn!("{label}: notification failed: {why} (attempt {attempt} of 3)");
        if attempt < 3 {
            std::thread::sleep(Duration::from_secs(attempt));
        }
    }
    let outcome = if why.is_empty() {
        json!({"status": "delivered", "event": event, "preset": preset.as_str(), "attempts": attempts})
    } else {
        json!({"status": "failed", "event": event, "preset": preset.as_str(), "attempts": attempts, "error": why})
    };
    at.record(event, &outcome, db_path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use RunStatus::*;

    #[test]
    fn which_event_a_run_end_is() {
        use NotifyOn as O;
        // (on, status, output, previous) -> event
        type Case<'a> = (
            &'a [NotifyOn],
            RunStatus,
            &'a str,
            Option<(RunStatus, &'a str)>,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            (&[O::Failure], Failed, "x", None, Some("failure")),
            (&[O::Failure], Timeout, "x", None, Some("failure")),
            (&[O::Failure], Success, "x", None, None),
            (&[O::Success], Success, "x", None, Some("success")),
            (&[O::Always], Success, "x", None, Some("success")),
            (&[O::Always], Failed, "x", None, Some("failure")),
            (
                &[O::Recovered],
                Success,
                "x",
                Some((Failed, "x")),
                Some("recovered"),
            ),
            (&[O::Recovered], Success, "x", Some((Success, "x")), None),
            (&[O::Recovered], Failed, "x", Some((Failed, "x")), None),
            (
                &[O::Changed],
                Success,
                "b",
                Some((Success, "a")),
                Some("changed"),
            ),
            (&[O::Changed], Success, "a", Some((Success, "a")), None),
            (&[O::Changed], Success, "a", None, None),
            (
                &[O::Failure, O::Recovered],
                Success,
                "x",
                Some((Timeout, "")),
                Some("recovered"),
            ),
            (
                &[O::Failure, O::Recovered],
                Failed,
                "x",
                Some((Success, "")),
                Some("failure"),
            ),
        ];
        for (on, status, out, prev, want) in cases {
            assert_eq!(
                event_for(on, *status, out, *prev),
                *want,
                "{on:?} {status} {prev:?}"
            );
        }
        assert!(is_silent("CLAUDECRON_SILENT\nnothing new"));
        assert!(!is_silent("ok\nCLAUDECRON_SILENT"));
        assert_eq!(slack_escape("<!channel> & co"), "&lt;!channel&gt; &amp; co");
    }

    #[test]
    fn a_stored_notify_with_one_word_still_reads() {
        let old: Notify =
            serde_json::from_value(json!({"url": "https://h.example/x", "on": "always"})).unwrap();
        assert_eq!(old.on, vec![NotifyOn::Always]);
        assert_eq!(old.preset, NotifyPreset::Generic);
        let new = serde_json::to_value(&old).unwrap();
        assert_eq!(new["on"], json!(["always"]));
        assert_eq!(serde_json::from_value::<Notify>(new).unwrap(), old);
    }

    #[test]
    fn dead_man_messages_say_since_when_and_what_was_expected() {
        let spec: crate::tasks::model::TaskSpec = serde_json::from_value(json!({
            "name": "nightly", "type": "bash", "enabled": false, "trigger": {"type": "manual"},
            "timezone": "UTC", "command": "x", "overlap": "skip", "catch_up": "skip",
            "retries": {"max_attempts": 0, "backoff_seconds": 30, "doubling": true},
            "expect": {"within": "26h"}
        }))
        .unwrap();
        let t = |s: &str| crate::util::parse_utc(s).unwrap();
        let mut task = Task {
            id: "t1".into(),
            spec,
            created_at: t("2026-11-01T00:00:00Z"),
            updated_at: t("2026-11-01T00:00:00Z"),
        };
        let missed = Deadman::Missed {
            start: t("2026-11-27T03:00:05Z"),
            overdue_since: t("2026-11-28T05:00:05Z"),
            reason: None,
        };
        let text = deadman_text(&task, missed);
        assert!(text.contains("\"nightly\" has had no successful run since 2026-11-27T03:00:05Z"));
        assert!(text.contains("a success at least every 26h"), "{text}");
        assert!(
            text.ends_with("overdue since 2026-11-28T05:00:05Z (missed)"),
            "{text}"
        );
        task.spec.expect = Some(Expect {
            within: None,
            grace: Some("1h".into()),
        });
        assert!(deadman_text(&task, missed).contains("within 1h of each fire time"));
        let paused = Deadman::Missed {
            start: t("2026-11-27T03:00:05Z"),
            overdue_since: t("2026-11-28T05:00:05Z"),
            reason: Some("claudecron is paused (pause_all since …)"),
        };
        assert!(deadman_text(&task, paused)
            .ends_with("(missed)\nreason: claudecron is paused (pause_all since …)"));
        let back = Deadman::Recovered {
            run_id: 7,
            output: "all good\n",
            overdue_since: t("2026-11-28T05:00:05Z"),
        };
        let text = deadman_text(&task, back);
        assert!(text.contains("is back on time: run 7 succeeded"), "{text}");
        assert!(text.ends_with("(recovered)\nall good"), "{text}");
        // The ntfy shape carries the good or bad news in its priority and tag.
        let target = Target {
            url: "https://ntfy.example/t".into(),
            preset: NotifyPreset::Ntfy,
            chat_id: None,
            secret: None,
        };
        let msg = shaped(
            &target,
            text,
            "claudecron: nightly back on time",
            true,
            "recovered",
            &Value::Null,
        );
        assert!(
            msg.headers.contains(&("Priority", "default".into())),
            "{msg:?}"
        );
        assert!(msg
            .headers
            .contains(&("Title", "claudecron: nightly back on time".into())));
    }
}
