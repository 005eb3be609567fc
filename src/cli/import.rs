//! `claudecron import-crontab FILE|-|--user [--dry-run]`: reads the crontab (a file, stdin or
//! `crontab -l`), has `cli::crontab` say what it means, and creates the bash tasks through the
//! running server's `claudecron_add_task` (so the server validates them as any client's). Lines
//! not imported are listed with the reason on stderr (and in `--json`), never dropped quietly.

use super::crontab::{self, Job, Skipped};
use super::remote::{common, Remote};
use super::CliError;
use crate::config::Sources;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::Read;

const USAGE: &str = "usage: claudecron import-crontab FILE|-|--user [--dry-run] [--tz TZ] [--system] [--disabled] [--json] [--url URL] [--token TOKEN]";

pub fn run(args: &[String], sources: &Sources) -> Result<(), CliError> {
    let c = common(args)?;
    let (mut source, mut dry_run, mut tz, mut system, mut enabled) =
        (None::<String>, false, None::<String>, false, true);
    let mut iter = c.rest.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = super::flags::split_flag(arg);
        match flag {
            "--dry-run" | "-n" => dry_run = true,
            "--system" => system = true,
            "--disabled" => enabled = false,
            "--user" if source.is_none() => source = Some("--user".into()),
            "--tz" => {
                tz = Some(inline.or_else(|| iter.next().cloned()).ok_or_else(|| {
                    CliError::Usage("--tz needs an IANA zone, e.g. --tz Europe/Berlin".into())
                })?)
            }
            _ if source.is_none() && (arg == "-" || !arg.starts_with('-')) => {
                source = Some(arg.clone())
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "unexpected argument \"{arg}\" for `import-crontab`; {USAGE}"
                )))
            }
        }
    }
    let source = source.ok_or_else(|| {
        CliError::Usage(format!("import-crontab needs a crontab to read; {USAGE}"))
    })?;
    let text = read_source(&source)?;
    if let Some(zone) = &tz {
        crate::tasks::schedule::parse_timezone(zone)
            .map_err(|e| CliError::Usage(format!("--tz: {e}")))?;
    }
    let default_tz = tz.or_else(host_zone);
    let mut remote = Remote::connect(&c, sources)?;
    let taken: HashSet<String> = remote
        .all_tasks()?
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    let parsed = crontab::parse(
        &text,
        default_tz.as_deref(),
        &taken,
        system,
        chrono::Utc::now(),
    );
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for job in &parsed.jobs {
        let args = job.add_task_args(enabled);
        if dry_run {
            let next = crate::tasks::catalog::preview_schedule(
                &job.schedule,
                job.timezone.as_deref().unwrap_or("UTC"),
                1,
                chrono::Utc::now(),
            )
            .ok()
            .and_then(|p| p["next_runs"][0]["local"].as_str().map(str::to_string));
            rows.push(json!({"line": job.line, "task": args, "next_run": next}));
            continue;
        }
        match remote.call("claudecron_add_task", args.clone()) {
            Ok(created) => rows.push(json!({"line": job.line, "task": created["task"]})),
            Err(e) => failed.push(skipped_json(&Skipped {
                line: job.line,
                text: job.command.clone(),
                reason: format!("the server refused the task: {}", message(e)),
            })),
        }
    }
    let skipped: Vec<Value> = parsed.skipped.iter().map(skipped_json).collect();
    let notes: Vec<Value> = parsed.notes.iter().map(skipped_json).collect();
    if c.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "dry_run": dry_run,
                "default_timezone": default_tz,
                "tasks": rows,
                "skipped": skipped,
                "failed": failed,
                "notes": notes,
            }))
            .unwrap_or_default()
        );
    } else {
        print_human(&parsed.jobs, &rows, dry_run, default_tz.as_deref());
        for (what, list) in [("note", &parsed.notes), ("not imported", &parsed.skipped)] {
            for s in list {
                eprintln!(
                    "line {}: {what}: {}\n    {}",
                    s.line,
                    s.reason,
                    s.text.trim()
                );
            }
        }
        let pending = rows
            .iter()
            .filter(|r| r["task"]["pending_approval"] == json!(true))
            .count();
        if pending > 0 {
            eprintln!("{pending} task(s) wait for the owner's approval (require_approval): on the server's host, `claudecron pending` shows them with their full content hashes and `claudecron approve TASK --content HASH...` approves (or `approve --all` on a terminal, which shows them and asks)");
        }
        for f in &failed {
            eprintln!(
                "line {}: not created: {}",
                f["line"],
                f["reason"].as_str().unwrap_or("")
            );
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} of {} tasks were not created (see above)",
            failed.len(),
            parsed.jobs.len()
        )))
    }
}

fn message(e: CliError) -> String {
    match e {
        CliError::Usage(m)
        | CliError::Config(m)
        | CliError::Failed(m)
        | CliError::Unreachable(m)
        | CliError::Denied(m) => m,
    }
}

fn skipped_json(s: &Skipped) -> Value {
    json!({"line": s.line, "text": s.text, "reason": s.reason})
}

fn print_human(jobs: &[Job], rows: &[Value], dry_run: bool, default_tz: Option<&str>) {
    let table_rows: Vec<Vec<String>> = jobs
        .iter()
        .zip(rows)
        .map(|(job, row)| {
            let next = if dry_run {
                row["next_run"].as_str().unwrap_or("-").to_string()
            } else {
                row["task"]["next_runs"][0]["local"]
                    .as_str()
                    .unwrap_or("-")
                    .to_string()
            };
            vec![
                job.line.to_string(),
                job.name.clone(),
                job.schedule.clone(),
                job.timezone.clone().unwrap_or("(server default)".into()),
                next,
                job.command.replace('\n', "\\n"),
            ]
        })
        .collect();
    println!(
        "{} {} task(s){}:",
        if dry_run { "Would create" } else { "Created" },
        jobs.len(),
        default_tz
            .map(|z| format!("; lines before any CRON_TZ use {z} (--tz to change)"))
            .unwrap_or_default()
    );
    print!(
        "{}",
        super::ops::table(
            &["LINE", "NAME", "SCHEDULE", "ZONE", "NEXT RUN", "COMMAND"],
            &table_rows
        )
    );
}

fn read_source(source: &str) -> Result<String, CliError> {
    match source {
        "-" => {
            let mut text = String::new();
            std::io::stdin()
                .take(4 << 20)
                .read_to_string(&mut text)
                .map_err(|e| CliError::Failed(format!("reading the crontab from stdin: {e}")))?;
            Ok(text)
        }
        "--user" => {
            let out = std::process::Command::new("crontab")
                .arg("-l")
                .output()
                .map_err(|e| CliError::Failed(format!("running `crontab -l`: {e}")))?;
            if !out.status.success() {
                return Err(CliError::Failed(format!(
                    "`crontab -l` failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        path => std::fs::read_to_string(path)
            .map_err(|e| CliError::Failed(format!("reading the crontab {path}: {e}"))),
    }
}

/// The host's zone, as cron daemons use it for jobs without CRON_TZ: /etc/timezone, else the
/// zone /etc/localtime links to. None when neither names a known zone.
fn host_zone() -> Option<String> {
    let named = std::fs::read_to_string("/etc/timezone")
        .ok()
        .map(|t| t.trim().to_string())
        .or_else(|| {
            let link = std::fs::read_link("/etc/localtime").ok()?;
            let text = link.to_string_lossy().into_owned();
            text.split_once("zoneinfo/").map(|(_, z)| z.to_string())
        })?;
    crate::tasks::schedule::parse_timezone(&named)
        .ok()
        .map(|z| z.name().to_string())
}
