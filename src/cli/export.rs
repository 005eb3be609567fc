//! Tasks (as `claudecron_get_task` shows them) → systemd `.service` + `.timer` pairs,
//! Kubernetes `CronJob` manifests, or a crontab. Each task is either rendered with the same
//! schedule (the day-of-month/day-of-week OR rule, zones, catch-up, overlap and retries carried
//! over where the target has them, said in a comment where it has not) or listed with the
//! reason it cannot be; nothing is dropped silently. Pure: no I/O, no clock.

mod cron;

use super::crontab::{shell_quote, unique_name};
use cron::Cron;
use serde_json::Value;
use std::collections::HashSet;

/// A target format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Systemd,
    K8s,
    Crontab,
}

impl Format {
    pub fn parse(text: &str) -> Result<Format, String> {
        match text {
            "systemd" => Ok(Format::Systemd),
            "k8s" | "kubernetes" => Ok(Format::K8s),
            "crontab" | "cron" => Ok(Format::Crontab),
            other => Err(format!(
                "--format \"{other}\" is not accepted; one of: systemd, k8s, crontab"
            )),
        }
    }
}

/// The rendered files and the tasks left out.
#[derive(Debug, Default)]
pub struct Export {
    /// (file name, content).
    pub files: Vec<(String, String)>,
    /// (task name, why it cannot be expressed).
    pub skipped: Vec<(String, String)>,
}

/// The container image for Kubernetes when `--image` is not given.
pub const DEFAULT_IMAGE: &str = "debian:bookworm-slim";

/// Render `tasks` (get_task views) in `format`; `image` is the Kubernetes container image.
pub fn render(tasks: &[Value], format: Format, image: &str) -> Export {
    let mut out = Export::default();
    let mut names: HashSet<String> = HashSet::new();
    let mut cron_lines: Vec<(String, String)> = Vec::new();
    for task in tasks {
        let name = task["name"].as_str().unwrap_or("?").to_string();
        match one(task, format, image, &mut names) {
            Ok(Rendered::Files(files)) => out.files.extend(files),
            Ok(Rendered::CronLine(zone, text)) => cron_lines.push((zone, text)),
            Err(reason) => out.skipped.push((name, reason)),
        }
    }
    if format == Format::Crontab {
        out.files
            .push(("claudecron.crontab".into(), crontab_file(cron_lines)));
    }
    out
}

enum Rendered {
    Files(Vec<(String, String)>),
    /// (zone, the comment and job line of one task).
    CronLine(String, String),
}

fn one(
    task: &Value,
    format: Format,
    image: &str,
    names: &mut HashSet<String>,
) -> Result<Rendered, String> {
    if task["type"] != "bash" {
        return Err(format!(
            "a {} task needs claudecron's runner (claude -p or the Messages API); only bash tasks can move",
            task["type"].as_str().unwrap_or("non-bash")
        ));
    }
    let command = task["command"].as_str().unwrap_or("");
    let zone = task["timezone"].as_str().unwrap_or("UTC");
    let trigger = &task["trigger"];
    let kind = trigger["type"].as_str().unwrap_or("?");
    let schedule = match kind {
        "cron" => trigger["schedule"].as_str().unwrap_or(""),
        "manual" if format == Format::Systemd => "",
        "once" if format == Format::Systemd => "",
        "file-watch" | "file_watch" => return Err("file-watch triggers need claudecron's watcher: the targets have no file trigger (a systemd .path unit is the nearest, by hand)".into()),
        "hook" => return Err("hook triggers fire on Claude Code events sent to claudecron; the targets never receive them".into()),
        "after" => return Err("after triggers chain on another task's run; the targets have no such trigger (systemd: OnSuccess=/OnFailure= by hand)".into()),
        "interval" => return Err(format!("interval triggers (every {} from {}) keep their phase from start_at; no target has that: give the task a cron schedule first", trigger["every"].as_str().unwrap_or("?"), trigger["start_at"].as_str().unwrap_or("?"))),
        "once" => return Err("a once trigger fires one time; a crontab or CronJob would repeat it every year (systemd can: --format systemd)".into()),
        "manual" => return Err("a manual task has no schedule; a crontab or CronJob would never run it (systemd: a .service without a timer, --format systemd)".into()),
        "webhook" => return Err("webhook triggers fire on POST /trigger/{token} to claudecron; the targets never receive it".into()),
        other => return Err(format!("the trigger \"{other}\" is not known to this export")),
    };
    let fields = if schedule.is_empty() {
        None
    } else {
        Some(Cron::parse(schedule)?)
    };
    match format {
        Format::Systemd => {
            let unit = unique_name(
                &format!(
                    "claudecron-{}",
                    slug(task["name"].as_str().unwrap_or("task"))
                ),
                names,
            );
            let mut files = vec![(format!("{unit}.service"), service(task, command))];
            let calendars: Option<Vec<String>> = match (&fields, kind) {
                (Some(cron), _) => Some(cron.on_calendar(zone)?),
                (None, "once") => {
                    let at = trigger["at"].as_str().unwrap_or("");
                    let utc = crate::util::parse_utc(at)
                        .ok_or_else(|| format!("once at \"{at}\" is not an RFC 3339 time"))?;
                    Some(vec![utc.format("%Y-%m-%d %H:%M:%S UTC").to_string()])
                }
                _ => None,
            };
            if let Some(calendars) = calendars {
                files.push((
                    format!("{unit}.timer"),
                    timer(task, &unit, &calendars, zone),
                ));
            }
            Ok(Rendered::Files(files))
        }
        Format::K8s => {
            let cron = fields.ok_or("no schedule")?;
            let mut base = slug(task["name"].as_str().unwrap_or("task")).replace('_', "-");
            base.truncate(45);
            let base = base.trim_matches('-').to_string();
            let name = unique_name(if base.is_empty() { "task" } else { &base }, names);
            Ok(Rendered::Files(vec![(
                format!("{name}.yaml"),
                cronjob(task, &name, &cron.five("Kubernetes")?, zone, image),
            )]))
        }
        Format::Crontab => {
            let cron = fields.ok_or("no schedule")?;
            let line = crontab_entry(task, &cron.five("cronie")?, command)?;
            Ok(Rendered::CronLine(zone.to_string(), line))
        }
    }
}

/// A name for files and units: lowercase letters, digits, `_` and `-`; `task` when none is left.
pub fn slug(text: &str) -> String {
    let out = super::crontab::slug(text);
    if out.is_empty() {
        "task".into()
    } else {
        out
    }
}

// ---------------------------------------------------------------------------------------------
// systemd
// ---------------------------------------------------------------------------------------------

/// A value for a unit file line: double-quoted, C escapes, `%` specifiers and (for ExecStart)
/// `$` variable references made literal.
fn sd_quote(text: &str, dollar: bool) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '%' => out.push_str("%%"),
            '$' if dollar => out.push_str("$$"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32 & 0xff)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn comment_lines(text: &str) -> String {
    text.lines().map(|l| format!("# {l}\n")).collect()
}

fn header(task: &Value) -> String {
    let mut h = format!(
        "claudecron task \"{}\" ({}): {}",
        task["name"].as_str().unwrap_or("?"),
        task["id"].as_str().unwrap_or("?"),
        task["trigger_summary"].as_str().unwrap_or("")
    );
    if let Some(d) = task["description"].as_str() {
        h.push('\n');
        h.push_str(d);
    }
    if task["enabled"] == Value::Bool(false) {
        h.push_str(
            "\nDISABLED in claudecron: keep it off (do not enable the timer / suspend: true)",
        );
    }
    comment_lines(&h)
}

fn service(task: &Value, command: &str) -> String {
    let mut s = header(task);
    s.push_str(&format!(
        "[Unit]\nDescription=claudecron task {}\n\n[Service]\nType=oneshot\nExecStart=/bin/sh -c {}\n",
        sd_quote(task["name"].as_str().unwrap_or("?"), false).trim_matches('"'),
        sd_quote(command, true)
    ));
    if let Some(cwd) = task["cwd"].as_str() {
        // WorkingDirectory= takes the rest of the line as the path: no quotes, `%` doubled.
        s.push_str(&format!("WorkingDirectory={}\n", cwd.replace('%', "%%")));
    }
    for (k, v) in task["env"].as_object().into_iter().flatten() {
        if let Some(name) = v["secret"].as_str() {
            s.push_str(&format!(
                "# {k}: the claudecron secret \"{name}\" (values are not exported; give it with an EnvironmentFile= of mode 0600)\n"
            ));
            continue;
        }
        s.push_str(&format!(
            "Environment={}\n",
            sd_quote(&format!("{k}={}", v.as_str().unwrap_or("")), false)
        ));
    }
    if let Some(t) = task["effective_timeout_seconds"].as_u64() {
        s.push_str(&format!("TimeoutStartSec={t}\n"));
    }
    let retries = task["retries"]["max_attempts"].as_u64().unwrap_or(0);
    if retries > 0 {
        s.push_str(&format!(
            "# claudecron retried a failed run {retries} more time(s), {} s apart; systemd's Restart= cannot count attempts per activation, so none are configured\n",
            task["retries"]["backoff_seconds"].as_u64().unwrap_or(0)
        ));
    }
    s
}

fn timer(task: &Value, unit: &str, calendars: &[String], zone: &str) -> String {
    let mut s = header(task);
    s.push_str(&format!(
        "[Unit]\nDescription=Timer of claudecron task {}\n\n[Timer]\nUnit={unit}.service\n",
        sd_quote(task["name"].as_str().unwrap_or("?"), false).trim_matches('"')
    ));
    for c in calendars {
        s.push_str(&format!("OnCalendar={c}\n"));
    }
    let catch_up = task["catch_up"] == "once";
    s.push_str(&format!("Persistent={catch_up}\nAccuracySec=1s\n"));
    match task["overlap"].as_str() {
        Some("queue") => s.push_str("# overlap = queue in claudecron: systemd never queues; a fire while the service runs is skipped\n"),
        Some("allow") => s.push_str("# overlap = allow in claudecron: systemd never starts a second run of a running service; that fire is skipped\n"),
        _ => {}
    }
    if zone != "UTC" && zone != "Etc/UTC" {
        s.push_str("# Daylight saving: systemd skips a time that falls in a spring-forward gap (claudecron ran it at the end of the gap) and runs an every-N-minutes schedule only in the first pass of a repeated hour (claudecron ran both)\n");
    }
    s.push_str("\n[Install]\nWantedBy=timers.target\n");
    s
}

// ---------------------------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------------------------

fn y(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

fn cronjob(task: &Value, name: &str, schedule: &str, zone: &str, image: &str) -> String {
    let mut s = header(task);
    let (policy, note) = match task["overlap"].as_str() {
        Some("allow") => ("Allow", ""),
        Some("queue") => ("Forbid", "  # overlap = queue in claudecron: Kubernetes has no queue, a fire during a run is skipped\n"),
        _ => ("Forbid", ""),
    };
    s.push_str(&format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {}\n  labels:\n    app.kubernetes.io/managed-by: claudecron-export\n  annotations:\n    claudecron.dev/task: {}\nspec:\n  schedule: {}\n  timeZone: {}\n  concurrencyPolicy: {policy}\n{note}",
        y(name),
        y(task["name"].as_str().unwrap_or("?")),
        y(schedule),
        y(zone)
    ));
    if task["catch_up"] == "once" {
        s.push_str("  # catch_up = once: no startingDeadlineSeconds, so the controller runs the latest missed schedule\n");
    } else {
        s.push_str("  # catch_up = skip: a fire that cannot start within 10 s is missed, as in claudecron\n  startingDeadlineSeconds: 10\n");
    }
    let retries = task["retries"]["max_attempts"].as_u64().unwrap_or(0);
    let timeout = task["effective_timeout_seconds"].as_u64().unwrap_or(300);
    s.push_str(&format!(
        "  suspend: {}\n  jobTemplate:\n    spec:\n      backoffLimit: {retries}\n      # each attempt may take {timeout} s (claudecron's timeout); Kubernetes' deadline covers all attempts\n      activeDeadlineSeconds: {}\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n            - name: task\n              image: {}\n              command: [\"/bin/sh\", \"-c\", {}]\n",
        task["enabled"] == Value::Bool(false),
        timeout * (retries + 1),
        y(image),
        y(task["command"].as_str().unwrap_or(""))
    ));
    if let Some(cwd) = task["cwd"].as_str() {
        s.push_str(&format!("              workingDir: {}\n", y(cwd)));
    }
    if let Some(env) = task["env"].as_object().filter(|e| !e.is_empty()) {
        s.push_str("              env:\n");
        for (k, v) in env {
            if let Some(name) = v["secret"].as_str() {
                // Values are not exported: a Secret of the same name, key "value".
                s.push_str(&format!(
                    "                - name: {}\n                  valueFrom:\n                    secretKeyRef:\n                      name: {}\n                      key: value\n",
                    y(k),
                    y(name)
                ));
                continue;
            }
            s.push_str(&format!(
                "                - name: {}\n                  value: {}\n",
                y(k),
                y(v.as_str().unwrap_or(""))
            ));
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// crontab
// ---------------------------------------------------------------------------------------------

fn crontab_entry(task: &Value, schedule: &str, command: &str) -> Result<String, String> {
    if command.contains('\n') {
        return Err(
            "the command spans several lines; a crontab line cannot hold it (put it in a script)"
                .into(),
        );
    }
    let name = task["name"].as_str().unwrap_or("?");
    let mut line = String::new();
    if let Some(cwd) = task["cwd"].as_str() {
        line.push_str(&format!("cd {} && ", shell_quote(cwd)));
    }
    for (k, v) in task["env"].as_object().into_iter().flatten() {
        if let Some(name) = v["secret"].as_str() {
            return Err(format!(
                "env {k} is the claudecron secret \"{name}\", and a crontab line cannot hold a secret (values are not exported)"
            ));
        }
        line.push_str(&format!("{k}={} ", shell_quote(v.as_str().unwrap_or(""))));
    }
    match task["overlap"].as_str() {
        Some("allow") => {}
        Some("queue") => line.push_str(&format!("flock /tmp/claudecron-{}.lock ", slug(name))),
        _ => line.push_str(&format!("flock -n /tmp/claudecron-{}.lock ", slug(name))),
    }
    let timeout = task["effective_timeout_seconds"].as_u64().unwrap_or(300);
    line.push_str(&format!(
        "timeout {timeout} /bin/sh -c {}",
        shell_quote(command)
    ));
    let line = line.replace('%', "\\%");
    let mut notes = Vec::new();
    if task["retries"]["max_attempts"].as_u64().unwrap_or(0) > 0 {
        notes.push("retries are not carried over (cron has none)");
    }
    if task["catch_up"] == "once" {
        notes.push("catch_up = once is not carried over (cron does not catch up; anacron does)");
    }
    let mut entry = header(task);
    for n in notes {
        entry.push_str(&format!("# {n}\n"));
    }
    let disabled = if task["enabled"] == Value::Bool(false) {
        "# "
    } else {
        ""
    };
    entry.push_str(&format!("{disabled}{schedule} {line}\n"));
    Ok(entry)
}

fn crontab_file(mut entries: Vec<(String, String)>) -> String {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from("# Exported from claudecron (claudecron export --format crontab).\n# Each job runs with /bin/sh -c under timeout; overlap = skip is kept with flock -n.\n");
    let mut zone = String::new();
    for (z, entry) in entries {
        if z != zone {
            out.push_str(&format!("\nCRON_TZ={z}\n"));
            zone = z;
        }
        out.push('\n');
        out.push_str(&entry);
    }
    out
}

#[cfg(test)]
mod tests;
