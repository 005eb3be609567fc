//! Crontab text → the bash tasks it means, with cronie's semantics: comments, environment lines
//! (`NAME=value`, quotes, `CRON_TZ=` for the lines after it, `MAILTO=`/`MAILFROM=` understood and
//! reported as not carried over), `@` macros, `%` in commands, the day-of-month/day-of-week rule;
//! `@reboot` and lines whose meaning claudecron cannot keep are reported with the reason, never
//! dropped. Task names come from the command, unique. Pure: no I/O, no clock (the caller passes
//! `now` for the schedule check); `cli::import` does the reading and the creating.

use crate::tasks::schedule::{parse_timezone, Schedule};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::collections::HashSet;

/// One job line that becomes a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// 1-based line number in the crontab.
    pub line: usize,
    pub name: String,
    /// The schedule as written (`0 9 * * 1-5`, `@daily`).
    pub schedule: String,
    /// The zone from `CRON_TZ=` (or the default given to [`parse`]); None: the server's default.
    pub timezone: Option<String>,
    /// The command as `/bin/sh -c` must see it (`%` turned into standard input).
    pub command: String,
    /// Environment lines in force for this job (not CRON_TZ/MAILTO/SHELL).
    pub env: BTreeMap<String, String>,
    /// The comment lines right above the job.
    pub description: Option<String>,
}

impl Job {
    /// The `claudecron_add_task` arguments for this job.
    pub fn add_task_args(&self, enabled: bool) -> Value {
        let mut args = json!({
            "name": self.name,
            "type": "bash",
            "schedule": self.schedule,
            "command": self.command,
            "enabled": enabled,
        });
        if let Some(tz) = &self.timezone {
            args["timezone"] = json!(tz);
        }
        if !self.env.is_empty() {
            let env: Map<String, Value> = self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            args["env"] = Value::Object(env);
        }
        let mut description = format!("imported from crontab line {}", self.line);
        if let Some(d) = &self.description {
            description = format!("{d} ({description})");
        }
        args["description"] = json!(description);
        args
    }
}

/// A line that is not imported, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub line: usize,
    pub text: String,
    pub reason: String,
}

/// What a crontab means.
#[derive(Debug, Default)]
pub struct Parsed {
    pub jobs: Vec<Job>,
    pub skipped: Vec<Skipped>,
    /// Lines understood but not carried over (MAILTO, SHELL, …), with what happens instead.
    pub notes: Vec<Skipped>,
}

/// Parse crontab text. `default_tz` is the zone of jobs before any `CRON_TZ=`; `taken` are names
/// already in use (the server's tasks). `system`: an /etc/crontab-style file with a user field.
pub fn parse(
    text: &str,
    default_tz: Option<&str>,
    taken: &HashSet<String>,
    system: bool,
    now: DateTime<Utc>,
) -> Parsed {
    let mut out = Parsed::default();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut tz: Option<String> = default_tz.map(str::to_string);
    let mut shell: Option<String> = None;
    let mut comments: Vec<String> = Vec::new();
    let mut names: HashSet<String> = taken.clone();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        let skip = |reason: String| Skipped {
            line: line_no,
            text: raw.to_string(),
            reason,
        };
        if line.is_empty() {
            comments.clear();
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let c = comment.trim();
            if !c.is_empty() {
                comments.push(c.to_string());
            }
            continue;
        }
        if let Some((name, value)) = env_line(line) {
            comments.clear();
            match name.as_str() {
                "CRON_TZ" => match parse_timezone(&value) {
                    Ok(zone) => tz = Some(zone.name().to_string()),
                    Err(e) => out
                        .skipped
                        .push(skip(format!("CRON_TZ: {e}; the jobs after it keep the zone before"))),
                },
                "MAILTO" | "MAILFROM" => out.notes.push(skip(format!(
                    "{name} is not carried over: claudecron keeps every run's output in its history (claudecron logs RUN); give a task a notify webhook to hear about failures"
                ))),
                "SHELL" => {
                    shell = Some(value).filter(|s| s != "/bin/sh");
                    if let Some(s) = &shell {
                        out.notes.push(skip(format!(
                            "SHELL={s}: the commands after it are wrapped as {s} -c '…' (claudecron runs /bin/sh -c)"
                        )));
                    }
                }
                "RANDOM_DELAY" | "CRON_CORRECT_TZ" => out.notes.push(skip(format!(
                    "{name} has no claudecron equivalent and is ignored"
                ))),
                n if n.starts_with("CLAUDECRON_") => out.notes.push(skip(format!(
                    "{n}: CLAUDECRON_* variables are reserved for claudecron's own and are not passed on"
                ))),
                _ => {
                    env.insert(name, value);
                }
            }
            continue;
        }
        let description = (!comments.is_empty()).then(|| comments.join(" "));
        comments.clear();
        match job_line(line, system) {
            Err(reason) => out.skipped.push(skip(reason)),
            Ok((schedule, command)) => {
                if let Err(reason) = check_schedule(&schedule, now) {
                    out.skipped.push(skip(reason));
                    continue;
                }
                let (command, stdin) = split_percent(command);
                let mut command = match &shell {
                    Some(s) => format!("{s} -c {}", shell_quote(&command)),
                    None => command,
                };
                if let Some(input) = stdin {
                    command = format!("printf '%s' {} | {{ {command}\n}}", shell_quote(&input));
                }
                let name = unique_name(&derive_name(raw_command(line, system)), &mut names);
                out.jobs.push(Job {
                    line: line_no,
                    name,
                    schedule,
                    timezone: tz.clone(),
                    command,
                    env: env.clone(),
                    description,
                });
            }
        }
    }
    out
}

/// `NAME=value` (spaces around `=` allowed, value optionally quoted), as cronie's load_env.
fn env_line(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once('=')?;
    let name = unquote(name.trim());
    // A job line such as `0 * * * * x=1` has whitespace before its `=`: not an environment line.
    if name.is_empty() || name.contains(char::is_whitespace) || name.starts_with('@') {
        return None;
    }
    Some((name.to_string(), unquote(value.trim()).to_string()))
}

/// Text without one pair of surrounding `"` or `'` quotes.
fn unquote(text: &str) -> &str {
    ['"', '\'']
        .iter()
        .find_map(|q| text.strip_prefix(*q).and_then(|t| t.strip_suffix(*q)))
        .unwrap_or(text)
}

const MACROS: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// The schedule and the command of a job line (the user field of a system crontab dropped).
fn job_line(line: &str, system: bool) -> Result<(String, String), String> {
    let line = line.strip_prefix('-').unwrap_or(line);
    let (schedule, rest) = if line.starts_with('@') {
        let (word, rest) = split_word(line);
        let word = word.to_ascii_lowercase();
        if word == "@reboot" {
            return Err("@reboot is not importable: claudecron has no start-up trigger (run the command from a systemd unit, or give the task a manual trigger and run it by hand)".into());
        }
        if !MACROS.contains(&word.as_str()) {
            return Err(format!(
                "\"{word}\" is not a cron macro; accepted: @reboot (not importable), {}",
                MACROS.join(", ")
            ));
        }
        (word, rest)
    } else {
        let mut fields = Vec::new();
        let mut rest = line;
        for _ in 0..5 {
            let (word, after) = split_word(rest);
            if word.is_empty() {
                return Err(format!(
                    "not a job line: {} of the 5 time fields (minute hour day-of-month month day-of-week) and no command",
                    fields.len()
                ));
            }
            fields.push(word);
            rest = after;
        }
        day_rule(fields[2], fields[4])?;
        (fields.join(" "), rest)
    };
    let rest = if system {
        let (user, after) = split_word(rest);
        if user.is_empty() {
            return Err("no user field (this is read as a system crontab: --system)".into());
        }
        after
    } else {
        rest
    };
    let command = rest.trim();
    if command.is_empty() {
        return Err("no command after the schedule".into());
    }
    Ok((schedule, command.to_string()))
}

/// The command text of a job line, for its name.
fn raw_command(line: &str, system: bool) -> &str {
    let mut rest = line.strip_prefix('-').unwrap_or(line);
    let words = if rest.starts_with('@') { 1 } else { 5 } + usize::from(system);
    for _ in 0..words {
        rest = split_word(rest).1;
    }
    rest.trim()
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    }
}

/// cronie ANDs the two day fields when either starts with `*` (`*/2` included); claudecron, like
/// croner, ORs them whenever neither is a plain `*`/`?`. Where the two differ, refuse the line.
fn day_rule(dom: &str, dow: &str) -> Result<(), String> {
    let plain = |f: &str| f == "*" || f == "?";
    let star = |f: &str| f.starts_with('*');
    if !plain(dom) && !plain(dow) && (star(dom) || star(dow)) {
        return Err(format!(
            "cronie runs this on days matching day-of-month \"{dom}\" AND day-of-week \"{dow}\" (a day field starting with * makes it AND), claudecron would run it on days matching either; write the days without the leading * (e.g. 1-31/2) or split the line"
        ));
    }
    Ok(())
}

fn check_schedule(schedule: &str, now: DateTime<Utc>) -> Result<(), String> {
    Schedule::parse(schedule, now).map(|_| ())
}

/// cronie: an unescaped `%` ends the command; the text after it is standard input, with each
/// further `%` a newline. `\%` is a literal `%`.
fn split_percent(command: String) -> (String, Option<String>) {
    let mut cmd = String::new();
    let mut input: Option<String> = None;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        let c = match c {
            '\\' if chars.peek() == Some(&'%') => {
                chars.next();
                '%'
            }
            '%' if input.is_none() => {
                input = Some(String::new());
                continue;
            }
            '%' => '\n',
            other => other,
        };
        input.as_mut().unwrap_or(&mut cmd).push(c);
    }
    (cmd, input)
}

/// `'text'` for /bin/sh, quotes inside escaped.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Wrappers and interpreters skipped when naming a task after its command.
const WRAPPERS: &[&str] = &[
    "env", "nice", "ionice", "nohup", "sudo", "chronic", "flock", "timeout", "exec", "time", "sh",
    "bash", "dash", "zsh", "python", "python3", "perl", "ruby", "node", "php", "run-one", "cronic",
    "setlock",
];

/// A task name from a command: the program (or the script an interpreter runs) and its first
/// plain argument, e.g. `/usr/bin/certbot renew -q` → `certbot-renew`,
/// `cd /srv && python3 bin/report.py` → `report`.
pub fn derive_name(command: &str) -> String {
    // The last `&&`/`;` segment that is not a `cd`.
    let segment = command
        .split("&&")
        .flat_map(|s| s.split(';'))
        .map(str::trim)
        .find(|s| !s.is_empty() && !s.starts_with("cd ") && *s != "cd")
        .unwrap_or(command);
    let words: Vec<&str> = segment.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let base = w.rsplit('/').next().unwrap_or(w);
        if w.contains('=') && !w.starts_with('-') && !w.contains('/') {
            i += 1;
        } else if w.starts_with('-') || WRAPPERS.contains(&base) || w.parse::<f64>().is_ok() {
            // Wrappers, their options and number arguments (timeout 30, nice -n 10).
            i += 1;
        } else if matches!(words.get(i.wrapping_sub(1)), Some(&"flock" | &"setlock")) {
            i += 1; // the lock file
        } else {
            break;
        }
    }
    let program = words
        .get(i)
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .unwrap_or("job");
    let program = program
        .rsplit_once('.')
        .filter(|(stem, ext)| !stem.is_empty() && ext.len() <= 4)
        .map(|(stem, _)| stem)
        .unwrap_or(program);
    let mut name = slug(program);
    if let Some(arg) = words.get(i + 1) {
        if arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !arg.starts_with('-')
        {
            name = format!("{name}-{}", slug(arg));
        }
    }
    let name: String = name.trim_matches('-').chars().take(60).collect();
    if name.is_empty() {
        "job".into()
    } else {
        name
    }
}

/// Lowercase letters, digits and `_`, other runs as one `-`, no `-` at the ends (may be empty).
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// `base`, or `base-2`, `base-3`, … the first not in `names`; then taken.
pub fn unique_name(base: &str, names: &mut HashSet<String>) -> String {
    let mut candidate = base.to_string();
    let mut n = 2;
    while names.contains(&candidate) {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    names.insert(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests;
