//! The owner's approval on the host (`require_approval`): `claudecron pending` lists the tasks
//! waiting with exactly the content an approval binds, `claudecron approve TASK... [--content
//! HASH]` records the approval of their current content directly in the database file (host
//! file access is the owner's credential: there is no tool or HTTP route that approves). The
//! running server reads approvals at each fire, so nothing has to be told. Also the check that
//! a host command runs as the owner of the files it writes.

use super::CliError;
use crate::config::{Config, Sources};
use crate::store::Store;
use crate::tasks::approval::{self, ApprovalState};
use crate::tasks::model::Task;
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The commands this module answers.
pub const COMMANDS: &[&str] = &["approve", "pending"];

/// Digits of the content hash shown by `pending` and accepted by `approve --content`.
const SHORT: usize = 12;

/// Run one of [`COMMANDS`].
pub fn run(command: &str, args: &[String], sources: &Sources) -> Result<(), CliError> {
    let config = super::load_config(sources)?;
    let mut json_out = false;
    let mut all = false;
    let mut content: Option<String> = None;
    let mut tasks: Vec<String> = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match super::flags::split_flag(arg) {
            ("--json", None) => json_out = true,
            ("--all", None) if command == "approve" => all = true,
            ("--content", inline) if command == "approve" => {
                content = Some(inline.or_else(|| iter.next().cloned()).ok_or_else(|| {
                    CliError::Usage("--content needs the hash `claudecron pending` shows".into())
                })?)
            }
            (flag, _) if flag.starts_with('-') => {
                return Err(CliError::Usage(format!(
                    "\"{arg}\" is not accepted by `{command}`; accepted: {}",
                    if command == "approve" {
                        "TASK... (id or name), --all, --content HASH, --json"
                    } else {
                        "--json"
                    }
                )))
            }
            _ if command == "approve" => tasks.push(arg.clone()),
            _ => {
                return Err(CliError::Usage(format!(
                    "`pending` takes no argument (\"{arg}\" given)"
                )))
            }
        }
    }
    let store = open_store(&config)?;
    let waiting = pending(&store)?;
    if command == "pending" {
        return print_pending(&config, &waiting, json_out);
    }
    if tasks.is_empty() != all {
        return Err(CliError::Usage(
            "`approve` needs the tasks to approve (ids or names, see `claudecron pending`), or --all for every pending task".into(),
        ));
    }
    if content.is_some() && (all || tasks.len() != 1) {
        return Err(CliError::Usage(
            "--content goes with exactly one TASK".into(),
        ));
    }
    owner_check(&config.db_path, "approve")?;
    let targets: Vec<Task> = if all {
        waiting.into_iter().map(|(t, _)| t).collect()
    } else {
        let mut found = Vec::new();
        for t in &tasks {
            found.push(
                store
                    .find_task(t)
                    .map_err(|e| CliError::Failed(e.to_string()))?
                    .ok_or_else(|| {
                        CliError::Failed(format!(
                            "no task has the id or name \"{t}\"; `claudecron pending` lists the tasks waiting for approval"
                        ))
                    })?,
            );
        }
        found
    };
    let now = chrono::Utc::now();
    let mut approved = Vec::new();
    for task in &targets {
        let hash = approval::content_hash(&task.spec);
        if let Some(expected) = &content {
            if !hash.starts_with(expected.as_str()) || expected.len() < 8 {
                return Err(CliError::Failed(format!(
                    "task \"{}\" has changed since its content {expected} was shown (now {}); look again with `claudecron pending`; nothing was approved",
                    task.spec.name,
                    &hash[..SHORT]
                )));
            }
        }
        store
            .set_approval(&task.id, &hash, "claudecron approve", now)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        approved.push(json!({"id": task.id, "name": task.spec.name, "content": &hash[..SHORT]}));
    }
    if json_out {
        println!(
            "{}",
            json!({ "approved": approved, "require_approval": config.require_approval })
        );
        return Ok(());
    }
    if approved.is_empty() {
        println!("nothing waits for approval");
    }
    for a in &approved {
        println!(
            "approved task \"{}\" (id {}, content {}); it runs from its next fire on",
            a["name"].as_str().unwrap_or(""),
            a["id"].as_str().unwrap_or(""),
            a["content"].as_str().unwrap_or("")
        );
    }
    if !config.require_approval {
        println!(
            "note: require_approval is off in this config, so tasks run without approval anyway"
        );
    }
    Ok(())
}

/// The database, which must exist (a host command never creates one).
fn open_store(config: &Config) -> Result<Store, CliError> {
    if !config.db_path.exists() {
        return Err(CliError::Failed(format!(
            "no database at {} (db_path); start the server once, or give --config of the server",
            config.db_path.display()
        )));
    }
    Store::open(&config.db_path)
        .map_err(|e| CliError::Failed(format!("database {}: {e}", config.db_path.display())))
}

/// The tasks whose current content is not approved, with their content hash.
fn pending(store: &Store) -> Result<Vec<(Task, String)>, CliError> {
    let all = store
        .tasks_with_approvals()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(all
        .into_iter()
        .filter(|(task, approved)| {
            approval::state(true, &task.spec, approved.as_deref()) == ApprovalState::PendingApproval
        })
        .map(|(task, _)| {
            let hash = approval::content_hash(&task.spec);
            (task, hash)
        })
        .collect())
}

/// What an approval binds: the task's JSON without the fields it leaves free.
fn bound_content(task: &Task) -> Value {
    let mut v = serde_json::to_value(&task.spec).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        for field in approval::UNBOUND_FIELDS {
            obj.remove(*field);
        }
    }
    v
}

fn print_pending(
    config: &Config,
    waiting: &[(Task, String)],
    json_out: bool,
) -> Result<(), CliError> {
    if json_out {
        let rows: Vec<Value> = waiting
            .iter()
            .map(|(t, hash)| {
                json!({"id": t.id, "name": t.spec.name, "enabled": t.spec.enabled,
                       "updated_at": crate::util::rfc3339(t.updated_at),
                       "content_sha256": hash, "content": bound_content(t)})
            })
            .collect();
        println!(
            "{}",
            json!({"pending": rows, "count": rows.len(), "require_approval": config.require_approval})
        );
        return Ok(());
    }
    if !config.require_approval {
        println!("note: require_approval is off in this config: tasks run without approval; these would wait if it were on");
    }
    if waiting.is_empty() {
        println!("no task waits for approval");
        return Ok(());
    }
    for (task, hash) in waiting {
        let short = &hash[..SHORT];
        println!(
            "\"{}\" (id {}, {}, changed {})",
            task.spec.name,
            task.id,
            if task.spec.enabled {
                "enabled"
            } else {
                "disabled"
            },
            crate::util::rfc3339(task.updated_at)
        );
        let pretty = serde_json::to_string_pretty(&bound_content(task)).unwrap_or_default();
        for line in pretty.lines() {
            println!("    {line}");
        }
        println!(
            "  approve this content: claudecron approve {} --content {short}\n",
            task.id
        );
    }
    println!("{} task(s) wait for approval", waiting.len());
    Ok(())
}

/// A host command that writes the data directory's files runs as the user who owns them (the
/// service user), so a root shell does not leave files the server cannot open.
pub fn owner_check(path: &Path, command: &str) -> Result<(), CliError> {
    let (Ok(file), Ok(me)) = (std::fs::metadata(path), std::fs::metadata("/proc/self")) else {
        return Ok(());
    };
    if file.uid() != me.uid() {
        return Err(CliError::Failed(format!(
            "{} belongs to uid {}, not to this user (uid {}); run `{command}` as its owner, e.g. sudo -u claudecron claudecron {command} …, so the files stay the server's",
            path.display(),
            file.uid(),
            me.uid()
        )));
    }
    Ok(())
}
