//! The operator's task and run commands against the running server (`tasks`, `task`, `runs`,
//! `logs`, `run`, `cancel`, `enable`, `disable`): arguments, calls through `cli::remote`, human
//! tables or `--json`, and exit codes (1 when a waited-for run did not succeed). It never reads
//! the database itself and never prints a token.

use super::remote::{common, Common, Remote};
use super::CliError;
use crate::config::Sources;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

/// How often `logs --follow` and `run --wait` poll the run (the server writes live output about
/// once a second).
const FOLLOW_POLL: Duration = Duration::from_millis(400);

/// The commands this module answers.
pub const COMMANDS: &[&str] = &[
    "tasks", "task", "runs", "logs", "run", "cancel", "enable", "disable", "export",
];

/// Run one of [`COMMANDS`].
pub fn run(command: &str, args: &[String], sources: &Sources) -> Result<(), CliError> {
    let c = common(args)?;
    match command {
        "tasks" => {
            no_more(&c.rest, "tasks", "")?;
            let tasks = Remote::connect(&c, sources)?.all_tasks()?;
            if c.json {
                return print_json(&json!({"tasks": tasks}));
            }
            print_tasks(&tasks);
            Ok(())
        }
        "task" => {
            let name = one(&c.rest, "task", "NAME")?;
            let task = Remote::connect(&c, sources)?
                .call("claudecron_get_task", json!({"taskId": name}))?;
            if c.json {
                return print_json(&task);
            }
            print_task(&task["task"]);
            Ok(())
        }
        "runs" => runs(&c, sources),
        "export" => export(&c, sources),
        "logs" => logs(&c, sources),
        "run" => start(&c, sources),
        "cancel" => {
            let id = run_id(one(&c.rest, "cancel", "RUN")?)?;
            let run = Remote::connect(&c, sources)?
                .call("claudecron_cancel_run", json!({"runId": id}))?;
            if c.json {
                return print_json(&run);
            }
            println!("run {id}: {}", status_words(&run["run"]));
            Ok(())
        }
        "enable" | "disable" => {
            let name = one(&c.rest, command, "NAME")?;
            let task = Remote::connect(&c, sources)?.call(
                "claudecron_toggle_task",
                json!({"taskId": name, "enabled": command == "enable"}),
            )?;
            if c.json {
                return print_json(&task);
            }
            let t = &task["task"];
            println!(
                "{} {}; next run: {}",
                text(&t["name"]),
                if t["enabled"] == json!(true) {
                    "enabled"
                } else {
                    "disabled"
                },
                t["next_runs"][0]["local"].as_str().unwrap_or("-")
            );
            Ok(())
        }
        other => Err(CliError::Usage(format!("unknown command \"{other}\""))),
    }
}

fn no_more(rest: &[String], command: &str, takes: &str) -> Result<(), CliError> {
    match rest.first() {
        Some(arg) => Err(CliError::Usage(format!(
            "unexpected argument \"{arg}\" for `{command}`; usage: claudecron {command} {takes}[--json] [--url URL] [--token TOKEN]"
        ))),
        None => Ok(()),
    }
}

fn one<'a>(rest: &'a [String], command: &str, what: &str) -> Result<&'a str, CliError> {
    match rest {
        [only] if !only.starts_with("--") => Ok(only),
        _ => Err(CliError::Usage(format!(
            "`{command}` takes one {what}: claudecron {command} {what} [--json] [--url URL] [--token TOKEN]{}",
            rest.iter()
                .find(|a| a.starts_with("--"))
                .map(|a| format!(" (\"{a}\" is not accepted here)"))
                .unwrap_or_default()
        ))),
    }
}

fn run_id(text: &str) -> Result<i64, CliError> {
    text.trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "\"{text}\" is not a run id; a positive whole number, as `claudecron runs` shows"
            ))
        })
}

fn print_json(value: &Value) -> Result<(), CliError> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A table with a header row, columns padded to their widest cell (the last one not padded).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(&cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

fn print_tasks(tasks: &[Value]) {
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let last = &t["last_run"];
            vec![
                text(&t["name"]),
                if t["enabled"] == json!(true) {
                    "yes"
                } else {
                    "no"
                }
                .into(),
                t["next_run"]["local"].as_str().unwrap_or("-").into(),
                match last["status"].as_str() {
                    Some(s) => format!("{s} (run {})", text(&last["id"])),
                    None => "-".into(),
                },
                text(&t["trigger_summary"]),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["NAME", "ENABLED", "NEXT RUN", "LAST RUN", "TRIGGER"],
            &rows
        )
    );
    if tasks.is_empty() {
        println!("(no tasks)");
    }
}

fn print_task(t: &Value) {
    let mut fields = vec![
        ("name", text(&t["name"])),
        ("id", text(&t["id"])),
        ("type", text(&t["type"])),
        ("enabled", text(&t["enabled"])),
        ("trigger", text(&t["trigger_summary"])),
        ("timezone", text(&t["timezone"])),
    ];
    for key in [
        "command",
        "prompt",
        "cwd",
        "description",
        "overlap",
        "catch_up",
    ] {
        if !t[key].is_null() {
            fields.push((key, text(&t[key])));
        }
    }
    fields.push((
        "timeout",
        format!("{} s", text(&t["effective_timeout_seconds"])),
    ));
    if t["retries"]["max_attempts"].as_u64().unwrap_or(0) > 0 {
        fields.push((
            "retries",
            format!(
                "{} more attempts, {} s apart{}",
                text(&t["retries"]["max_attempts"]),
                text(&t["retries"]["backoff_seconds"]),
                if t["retries"]["doubling"] == json!(true) {
                    " (doubling)"
                } else {
                    ""
                }
            ),
        ));
    }
    for (key, value) in fields {
        println!("{key:<12}{}", value.replace('\n', "\n            "));
    }
    let next: Vec<&str> = t["next_runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["local"].as_str())
        .collect();
    println!(
        "{:<12}{}",
        "next runs",
        if next.is_empty() {
            "-".into()
        } else {
            next.join("\n            ")
        }
    );
    let runs = t["last_runs"].as_array().cloned().unwrap_or_default();
    if !runs.is_empty() {
        println!("\nlast runs:");
        print!("{}", runs_table(&runs));
    }
}

fn runs_table(runs: &[Value]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                text(&r["id"]),
                r["task_name"].as_str().unwrap_or("").to_string(),
                text(&r["status"]),
                text(&r["trigger"]),
                r["started_at"]
                    .as_str()
                    .or(r["queued_at"].as_str())
                    .unwrap_or("-")
                    .into(),
                r["duration_ms"]
                    .as_f64()
                    .map(|ms| format!("{:.1} s", ms / 1000.0))
                    .unwrap_or("-".into()),
                r["exit_code"]
                    .as_i64()
                    .map(|c| c.to_string())
                    .unwrap_or("-".into()),
                r["error"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ]
        })
        .collect();
    table(
        &[
            "RUN",
            "TASK",
            "STATUS",
            "TRIGGER",
            "STARTED (UTC)",
            "DURATION",
            "EXIT",
            "ERROR",
        ],
        &rows,
    )
}

fn runs(c: &Common, sources: &Sources) -> Result<(), CliError> {
    let mut args = json!({});
    let mut iter = c.rest.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = super::flags::split_flag(arg);
        let mut value = || inline.clone().or_else(|| iter.next().cloned());
        match flag {
            "--status" => {
                args["status"] = json!(value().ok_or_else(|| CliError::Usage(
                    "--status needs a value: all, success, failed, running, skipped, queued, timeout, cancelled, interrupted".into()
                ))?)
            }
            "--limit" => {
                let text = value().unwrap_or_default();
                let n: u64 = text.parse().ok().filter(|n| (1..=500).contains(n)).ok_or_else(|| {
                    CliError::Usage(format!("--limit \"{text}\" is not accepted; a whole number from 1 to 500"))
                })?;
                args["limit"] = json!(n);
            }
            _ if !arg.starts_with("--") && args.get("taskId").is_none() => {
                args["taskId"] = json!(arg)
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "unexpected argument \"{arg}\" for `runs`; usage: claudecron runs [NAME] [--status S] [--limit N] [--json]"
                )))
            }
        }
    }
    let history = Remote::connect(c, sources)?.call("claudecron_get_history", args)?;
    if c.json {
        return print_json(&history);
    }
    let runs = history["runs"].as_array().cloned().unwrap_or_default();
    print!("{}", runs_table(&runs));
    if runs.is_empty() {
        println!("(no runs)");
    }
    Ok(())
}

fn status_words(run: &Value) -> String {
    let mut s = text(&run["status"]);
    if let Some(code) = run["exit_code"].as_i64() {
        s.push_str(&format!(", exit {code}"));
    }
    if let Some(ms) = run["duration_ms"].as_f64() {
        s.push_str(&format!(", {:.1} s", ms / 1000.0));
    }
    if let Some(e) = run["error"].as_str() {
        s.push_str(&format!(": {e}"));
    }
    s
}

fn active(run: &Value) -> bool {
    matches!(run["status"].as_str(), Some("queued" | "running"))
}

/// A run ended other than `success` is a failure for the exit code.
fn outcome(run: &Value) -> Result<(), CliError> {
    match run["status"].as_str() {
        Some("success") => Ok(()),
        _ => Err(CliError::Failed(format!(
            "run {} of {}: {}",
            text(&run["id"]),
            run["task_name"].as_str().unwrap_or("?"),
            status_words(run)
        ))),
    }
}

fn logs(c: &Common, sources: &Sources) -> Result<(), CliError> {
    let mut follow = false;
    let mut id: Option<i64> = None;
    for arg in &c.rest {
        match arg.as_str() {
            "--follow" | "-f" => follow = true,
            a if !a.starts_with('-') && id.is_none() => id = Some(run_id(a)?),
            _ => {
                return Err(CliError::Usage(format!(
                    "unexpected argument \"{arg}\" for `logs`; usage: claudecron logs RUN [--follow] [--json]"
                )))
            }
        }
    }
    let id = id.ok_or_else(|| {
        CliError::Usage("`logs` needs a run id: claudecron logs RUN [--follow]".into())
    })?;
    let mut remote = Remote::connect(c, sources)?;
    if !follow {
        let run = remote.call("claudecron_get_run", json!({"runId": id}))?;
        if c.json {
            return print_json(&run);
        }
        print!("{}", run["run"]["output"].as_str().unwrap_or(""));
        return Ok(());
    }
    let run = follow_run(&mut remote, id, c.json)?;
    outcome(&run)
}

/// Print a run's output as it grows until the run ends; its final row. With `json`, one JSON
/// object per line: `{"output": new text}` as it comes, then `{"run": the final row}`.
fn follow_run(remote: &mut Remote, id: i64, json_lines: bool) -> Result<Value, CliError> {
    let mut printed = String::new();
    let mut stdout = std::io::stdout();
    loop {
        let run = remote.call("claudecron_get_run", json!({"runId": id}))?["run"].clone();
        let output = run["output"].as_str().unwrap_or("");
        let new = new_text(&printed, output);
        if !new.is_empty() {
            if json_lines {
                let _ = writeln!(stdout, "{}", json!({"output": new}));
            } else {
                let _ = write!(stdout, "{new}");
            }
            let _ = stdout.flush();
            printed = output.to_string();
        }
        if !active(&run) {
            if json_lines {
                let _ = writeln!(stdout, "{}", json!({"run": run}));
            } else {
                eprintln!("run {id}: {}", status_words(&run));
            }
            return Ok(run);
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// What `output` adds to what was printed. When the server cut the middle out (head and tail
/// capture), the text after the last printed line (at most 200 bytes of it), or a marker and the
/// whole output when that line is gone too.
fn new_text(printed: &str, output: &str) -> String {
    if let Some(rest) = output.strip_prefix(printed) {
        return rest.to_string();
    }
    let body = printed.strip_suffix('\n').unwrap_or(printed);
    let mut cut = body.rfind('\n').map(|i| i + 1).unwrap_or(0);
    cut = cut.max(printed.len().saturating_sub(200));
    while !printed.is_char_boundary(cut) {
        cut += 1;
    }
    let anchor = &printed[cut..];
    match output.rfind(anchor) {
        Some(at) if !anchor.is_empty() => output[at + anchor.len()..].to_string(),
        _ => format!("\n[claudecron: some output was left out]\n{output}"),
    }
}

fn start(c: &Common, sources: &Sources) -> Result<(), CliError> {
    let mut wait = false;
    let mut name: Option<&str> = None;
    for arg in &c.rest {
        match arg.as_str() {
            "--wait" | "-w" => wait = true,
            a if !a.starts_with('-') && name.is_none() => name = Some(a),
            _ => {
                return Err(CliError::Usage(format!(
                    "unexpected argument \"{arg}\" for `run`; usage: claudecron run NAME [--wait] [--json]"
                )))
            }
        }
    }
    let name = name.ok_or_else(|| {
        CliError::Usage("`run` needs a task name: claudecron run NAME [--wait]".into())
    })?;
    let mut remote = Remote::connect(c, sources)?;
    let run = remote.call("claudecron_run_task", json!({"taskId": name}))?["run"].clone();
    let id = run["id"].as_i64().unwrap_or(0);
    if !wait {
        if c.json {
            return print_json(&json!({ "run": run }));
        }
        println!("run {id} of {name}: {}", status_words(&run));
        return outcome_if_ended(&run);
    }
    if !c.json {
        eprintln!("run {id} of {name} started");
    }
    let run = follow_run(&mut remote, id, c.json)?;
    outcome(&run)
}

/// A run that ended at once (skipped by the overlap policy, say) is reported as not run.
fn outcome_if_ended(run: &Value) -> Result<(), CliError> {
    if active(run) {
        Ok(())
    } else {
        outcome(run)
    }
}

const EXPORT_USAGE: &str = "usage: claudecron export --format systemd|k8s|crontab [TASK...] [--image IMAGE] [--out DIR] [--json]";

/// `export`: the tasks (named, or all) from the server, rendered by `cli::export`; files to
/// stdout or into `--out DIR`; tasks left out listed on stderr (and in `--json`), exit 1 then.
fn export(c: &Common, sources: &Sources) -> Result<(), CliError> {
    use super::export::{render, Format, DEFAULT_IMAGE};
    let (mut format, mut image, mut out_dir) = (None, DEFAULT_IMAGE.to_string(), None);
    let mut names: Vec<String> = Vec::new();
    let mut iter = c.rest.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = super::flags::split_flag(arg);
        let mut value = || {
            inline
                .clone()
                .or_else(|| iter.next().cloned())
                .ok_or_else(|| CliError::Usage(format!("{flag} needs a value; {EXPORT_USAGE}")))
        };
        match flag {
            "--format" => format = Some(Format::parse(&value()?).map_err(CliError::Usage)?),
            "--image" => image = value()?,
            "--out" => out_dir = Some(std::path::PathBuf::from(value()?)),
            _ if !arg.starts_with("--") => names.push(arg.clone()),
            _ => {
                return Err(CliError::Usage(format!(
                    "unexpected argument \"{arg}\" for `export`; {EXPORT_USAGE}"
                )))
            }
        }
    }
    let format =
        format.ok_or_else(|| CliError::Usage(format!("export needs --format; {EXPORT_USAGE}")))?;
    let mut remote = Remote::connect(c, sources)?;
    if names.is_empty() {
        names = remote
            .all_tasks()?
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect();
    }
    let mut tasks = Vec::new();
    for name in &names {
        tasks.push(remote.call("claudecron_get_task", json!({"taskId": name}))?["task"].clone());
    }
    let export = render(&tasks, format, &image);
    if let Some(dir) = &out_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::Failed(format!("creating {}: {e}", dir.display())))?;
        for (name, content) in &export.files {
            let path = dir.join(name);
            std::fs::write(&path, content)
                .map_err(|e| CliError::Failed(format!("writing {}: {e}", path.display())))?;
        }
    }
    let skipped: Vec<Value> = export
        .skipped
        .iter()
        .map(|(task, reason)| json!({"task": task, "reason": reason}))
        .collect();
    if c.json {
        let files: Vec<Value> = export
            .files
            .iter()
            .map(|(name, content)| json!({"name": name, "content": content}))
            .collect();
        print_json(&json!({"files": files, "skipped": skipped}))?;
    } else if let Some(dir) = &out_dir {
        for (name, _) in &export.files {
            println!("{}", dir.join(name).display());
        }
    } else {
        for (i, (name, content)) in export.files.iter().enumerate() {
            if export.files.len() > 1 {
                let sep = if format == Format::K8s { "---\n" } else { "" };
                println!("{}{sep}# ==> {name} <==", if i > 0 { "\n" } else { "" });
            }
            print!("{content}");
        }
    }
    if !c.json {
        for (task, reason) in &export.skipped {
            eprintln!("not exported: {task}: {reason}");
        }
    }
    match export.skipped.len() {
        0 => Ok(()),
        n => Err(CliError::Failed(format!(
            "{n} of {} task(s) could not be expressed as {} (listed above)",
            tasks.len(),
            match format {
                Format::Systemd => "systemd units",
                Format::K8s => "Kubernetes CronJobs",
                Format::Crontab => "crontab lines",
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_text_appends_and_survives_a_cut_middle() {
        assert_eq!(new_text("", "a\n"), "a\n");
        assert_eq!(new_text("a\n", "a\nb\n"), "b\n");
        assert_eq!(new_text("a\nb\n", "a\nb\n"), "");
        // Head kept, middle cut, tail slides: the text after what was printed last.
        assert_eq!(
            new_text("head\nline 7\n", "head\n[cut]\nline 7\nline 8\n"),
            "line 8\n"
        );
        assert!(new_text("xyz", "abc").contains("left out"));
    }

    #[test]
    fn table_pads_all_but_the_last_column() {
        let t = table(&["A", "BB"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(t, "A     BB\nlong  x\n");
    }

    #[test]
    fn run_ids_are_positive_numbers() {
        assert_eq!(run_id("42").ok(), Some(42));
        assert_eq!(run_id("#7").ok(), Some(7));
        assert!(run_id("0").is_err());
        assert!(run_id("abc").is_err());
    }
}
