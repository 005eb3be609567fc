//! The owner's approval on the host (`require_approval`): `claudecron pending` lists the tasks
//! waiting with exactly the content an approval binds and its full hash (control and bidi
//! characters escaped), `claudecron approve TASK --content HASH...` signs each task's current
//! content with the owner's private key (`approval_key`) and writes the signature into the
//! database as the database file's owner (root drops to that user first); without `--content`
//! it shows the content and asks on a terminal, and refuses elsewhere. `approve --init-key`
//! makes the key pair. There is no tool or HTTP route that approves, and a run that cannot read
//! the private key cannot sign. Also the check that a host command runs as the owner of the
//! files it writes.

use super::CliError;
use crate::config::{Config, Sources};
use crate::store::Store;
use crate::tasks::approval::{self, ApprovalState, PrivateKey, PublicKey, MIN_CONTENT_HEX};
use crate::tasks::model::Task;
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The commands this module answers.
pub const COMMANDS: &[&str] = &["approve", "pending"];

const ACCEPTED: &str =
    "TASK [--content HASH] ... (id or name, each with the full hash `claudecron pending` shows), --all, --init-key, --json";

/// The parsed command line of `approve` / `pending`.
#[derive(Default)]
struct Args {
    json: bool,
    all: bool,
    init_key: bool,
    /// Tasks to approve, each with the content hash given after it.
    targets: Vec<(String, Option<String>)>,
}

fn parse(command: &str, args: &[String]) -> Result<Args, CliError> {
    let mut out = Args::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match super::flags::split_flag(arg) {
            ("--json", None) => out.json = true,
            ("--all", None) if command == "approve" => out.all = true,
            ("--init-key", None) if command == "approve" => out.init_key = true,
            ("--content", inline) if command == "approve" => {
                let hash = inline.or_else(|| iter.next().cloned()).ok_or_else(|| {
                    CliError::Usage(
                        "--content needs the full hash `claudecron pending` shows".into(),
                    )
                })?;
                match out.targets.last_mut() {
                    Some((_, slot @ None)) => *slot = Some(content_arg(&hash)?),
                    _ => {
                        return Err(CliError::Usage(
                            "--content goes right after the TASK whose content it names (one --content per task)".into(),
                        ))
                    }
                }
            }
            (flag, _) if flag.starts_with('-') => {
                return Err(CliError::Usage(format!(
                    "\"{arg}\" is not accepted by `{command}`; accepted: {}",
                    if command == "approve" {
                        ACCEPTED
                    } else {
                        "--json"
                    }
                )))
            }
            _ if command == "approve" => out.targets.push((arg.clone(), None)),
            _ => {
                return Err(CliError::Usage(format!(
                    "`pending` takes no argument (\"{arg}\" given)"
                )))
            }
        }
    }
    if command == "approve" && !out.init_key && out.targets.is_empty() != out.all {
        return Err(CliError::Usage(format!(
            "`approve` needs the tasks to approve, or --all for every pending task; accepted: {ACCEPTED}"
        )));
    }
    if out.init_key && (out.all || !out.targets.is_empty()) {
        return Err(CliError::Usage(
            "--init-key makes the key pair and takes no task".into(),
        ));
    }
    Ok(out)
}

/// A `--content` value: hex, at least [`MIN_CONTENT_HEX`] digits of the 64.
fn content_arg(hash: &str) -> Result<String, CliError> {
    let hash = hash.trim().to_ascii_lowercase();
    if hash.len() < MIN_CONTENT_HEX
        || hash.len() > 64
        || !hash.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(CliError::Usage(format!(
            "--content \"{hash}\" is not accepted: give the full content hash `claudecron pending` shows (64 hex digits; at least {MIN_CONTENT_HEX})"
        )));
    }
    Ok(hash)
}

/// Run one of [`COMMANDS`].
pub fn run(command: &str, args: &[String], sources: &Sources) -> Result<(), CliError> {
    let config = super::load_config(sources)?;
    let args = parse(command, args)?;
    let keys = &config.approval_keys;
    if args.init_key {
        keys.create().map_err(CliError::Failed)?;
        println!(
            "approval key pair made: private {} (0600: keep it unreadable by the service user), public {} (0644; the server reads it at start: restart it)",
            keys.private.display(),
            keys.public.display()
        );
        return Ok(());
    }
    // The private key is read before anything else, while this process may still be root.
    let private = if command == "approve" {
        Some(keys.load_private().map_err(CliError::Failed)?)
    } else {
        None
    };
    let public = keys.load_public().ok();
    let store = open_as_owner(&config, command)?;
    let waiting = pending(&store, public.as_ref())?;
    match private {
        None => print_pending(&config, public.as_ref(), &waiting, args.json),
        Some(private) => approve(&config, &store, &private, public, waiting, &args),
    }
}

fn approve(
    config: &Config,
    store: &Store,
    private: &PrivateKey,
    public: Option<PublicKey>,
    waiting: Vec<(Task, String)>,
    args: &Args,
) -> Result<(), CliError> {
    let mut targets: Vec<(Task, String, Option<String>)> = Vec::new();
    if args.all {
        targets.extend(waiting.into_iter().map(|(t, h)| (t, h, None)));
    }
    for (name, expected) in &args.targets {
        let task = store
            .find_task(name)
            .map_err(|e| CliError::Failed(e.to_string()))?
            .ok_or_else(|| {
                CliError::Failed(format!(
                    "no task has the id or name \"{name}\"; `claudecron pending` lists the tasks waiting for approval"
                ))
            })?;
        let hash = approval::content_hash(&task.spec);
        targets.push((task, hash, expected.clone()));
    }
    for (task, hash, expected) in &targets {
        if let Some(expected) = expected {
            if !hash.starts_with(expected.as_str()) {
                return Err(CliError::Failed(format!(
                    "task {} has changed since its content {expected} was shown (now {hash}); look again with `claudecron pending`; nothing was approved",
                    shown(&json!(task.spec.name).to_string())
                )));
            }
        }
    }
    let unconfirmed: Vec<&(Task, String, Option<String>)> =
        targets.iter().filter(|(_, _, e)| e.is_none()).collect();
    if !unconfirmed.is_empty() {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Usage(
                "approving without --content needs a terminal to show the content and ask; give each task with the full hash you checked: claudecron approve TASK --content HASH [TASK --content HASH ...] (`claudecron pending` shows both); nothing was approved".into(),
            ));
        }
        for (task, hash, _) in &unconfirmed {
            print_task(task, hash);
        }
        print!(
            "sign and approve the {} task(s) above exactly as shown? [y/N] ",
            unconfirmed.len()
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            return Err(CliError::Failed(
                "not confirmed; nothing was approved".into(),
            ));
        }
    }
    let now = chrono::Utc::now();
    let mut approved = Vec::new();
    for (task, hash, _) in &targets {
        let signature = private.sign(&task.id, hash);
        store
            .set_approval(&task.id, hash, &signature, "claudecron approve", now)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        approved.push(json!({"id": task.id, "name": task.spec.name, "content_sha256": hash}));
    }
    let mismatch = public.is_some_and(|p| p != private.public());
    let warning = match public {
        None => Some(format!("no readable approval public key at {}: the server cannot check these approvals (it treats every task as pending)", config.approval_keys.public.display())),
        Some(_) if mismatch => Some(format!("the public key {} is not this private key's: the server will not accept these approvals", config.approval_keys.public.display())),
        Some(_) => None,
    };
    if args.json {
        let out = json!({ "approved": approved, "require_approval": config.require_approval, "warning": warning });
        println!("{}", shown(&out.to_string()));
        return Ok(());
    }
    if approved.is_empty() {
        println!("nothing waits for approval");
    }
    for a in &approved {
        println!(
            "approved task {} (id {}, content {}); it runs from its next fire on",
            shown(&a["name"].to_string()),
            a["id"].as_str().unwrap_or(""),
            a["content_sha256"].as_str().unwrap_or("")
        );
    }
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    if !config.require_approval {
        println!(
            "note: require_approval is off in this config, so tasks run without approval anyway"
        );
    }
    Ok(())
}

/// The database, which must exist (a host command never creates one), opened as its file's
/// owner: root becomes that user first, so no file SQLite makes (-wal, -shm) is root's.
fn open_as_owner(config: &Config, command: &str) -> Result<Store, CliError> {
    let path = &config.db_path;
    let meta = std::fs::metadata(path).map_err(|e| {
        CliError::Failed(format!(
            "no database at {} ({e}; db_path); start the server once, or give --config of the server",
            path.display()
        ))
    })?;
    let me = crate::sys::effective_uid();
    if me == 0 && meta.uid() != 0 {
        crate::sys::become_user(meta.uid(), meta.gid()).map_err(|e| {
            CliError::Failed(format!(
                "cannot become uid {} (the owner of {}): {e}; nothing was changed",
                meta.uid(),
                path.display()
            ))
        })?;
    } else if me != meta.uid() {
        return Err(CliError::Failed(format!(
            "{} belongs to uid {}, not to this user (uid {me}); run `{command}` as root (sudo claudecron {command} …: it reads the approval key, then writes as the database's owner) or as that user",
            path.display(),
            meta.uid()
        )));
    }
    Store::open(path).map_err(|e| CliError::Failed(format!("database {}: {e}", path.display())))
}

/// The tasks without a valid signature of their current content, with their content hash.
fn pending(store: &Store, key: Option<&PublicKey>) -> Result<Vec<(Task, String)>, CliError> {
    let all = store
        .tasks_with_approvals()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(all
        .into_iter()
        .filter(|(task, sig)| {
            approval::state(true, key, &task.id, &task.spec, sig.as_deref())
                == ApprovalState::PendingApproval
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

/// JSON text with every control, bidi and invisible format character written as a `\uXXXX`
/// escape (the same JSON value), so what the owner reads is what is signed (no Trojan-Source
/// display tricks). Line breaks between JSON tokens stay.
pub fn shown(json_text: &str) -> String {
    let mut out = String::with_capacity(json_text.len());
    for c in json_text.chars() {
        if c != '\n' && (c.is_control() || invisible(c)) {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Format characters that change or hide what is displayed: bidi embeddings, overrides,
/// isolates and marks, zero-width characters, line/paragraph separators, tags.
fn invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x2028..=0x202E | 0x205F..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB | 0xE0000..=0xE0FFF)
}

fn print_task(task: &Task, hash: &str) {
    println!(
        "{} (id {}, {}, changed {})",
        shown(&json!(task.spec.name).to_string()),
        task.id,
        if task.spec.enabled {
            "enabled"
        } else {
            "disabled"
        },
        crate::util::rfc3339(task.updated_at)
    );
    let pretty = serde_json::to_string_pretty(&bound_content(task)).unwrap_or_default();
    for line in shown(&pretty).lines() {
        println!("    {line}");
    }
    println!("  content sha256: {hash}");
}

fn print_pending(
    config: &Config,
    key: Option<&PublicKey>,
    waiting: &[(Task, String)],
    json_out: bool,
) -> Result<(), CliError> {
    let no_key = key.is_none().then(|| {
        format!(
            "no readable approval public key at {}: the server treats every task as pending; make the pair with `claudecron approve --init-key` (as root in the service layout) and restart the server",
            config.approval_keys.public.display()
        )
    });
    if json_out {
        let rows: Vec<Value> = waiting
            .iter()
            .map(|(t, hash)| {
                json!({"id": t.id, "name": t.spec.name, "enabled": t.spec.enabled,
                       "updated_at": crate::util::rfc3339(t.updated_at),
                       "content_sha256": hash, "content": bound_content(t)})
            })
            .collect();
        let out = json!({"pending": rows, "count": rows.len(),
            "require_approval": config.require_approval, "warning": no_key});
        println!("{}", shown(&out.to_string()));
        return Ok(());
    }
    if !config.require_approval {
        println!("note: require_approval is off in this config: tasks run without approval; these would wait if it were on");
    }
    if let Some(w) = no_key {
        println!("warning: {w}");
    }
    if waiting.is_empty() {
        println!("no task waits for approval");
        return Ok(());
    }
    for (task, hash) in waiting {
        print_task(task, hash);
        println!(
            "  approve this content: claudecron approve {} --content {hash}\n",
            task.id
        );
    }
    if waiting.len() > 1 {
        let all: Vec<String> = waiting
            .iter()
            .map(|(t, h)| format!("{} --content {h}", t.id))
            .collect();
        println!(
            "approve all of them as shown: claudecron approve {}\n",
            all.join(" ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_escapes_control_bidi_and_invisible_characters_as_json() {
        let text = json!({"command": "echo \u{202e}gnp.exe\u{202c} \u{7f}\u{85}a\u{200b}b\u{2066}\u{e0041}", "n": "é"}).to_string();
        let out = shown(&text);
        for bad in [
            '\u{202e}',
            '\u{202c}',
            '\u{7f}',
            '\u{85}',
            '\u{200b}',
            '\u{2066}',
            '\u{e0041}',
        ] {
            assert!(!out.contains(bad), "{bad:?} in {out}");
        }
        assert!(
            out.contains("\\u202e") && out.contains("\\udb40\\udc41"),
            "{out}"
        );
        assert!(out.contains('é'), "ordinary letters stay: {out}");
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back.to_string(), text, "the same JSON value");
        assert_eq!(shown("{\n  \"a\": 1\n}"), "{\n  \"a\": 1\n}");
    }

    #[test]
    fn content_must_be_at_least_half_the_hash() {
        assert!(content_arg(&"a".repeat(12)).is_err());
        assert!(content_arg(&"a".repeat(31)).is_err());
        assert!(content_arg(&"g".repeat(40)).is_err());
        assert!(content_arg(&"a".repeat(65)).is_err());
        assert_eq!(content_arg(&"A".repeat(32)).unwrap(), "a".repeat(32));
        assert!(content_arg(&"0".repeat(64)).is_ok());
    }
}
