//! `claudecron oauth …`: the owner's side of the OAuth sign-in (issue 12). `set-password` reads
//! a password on stdin and stores its PBKDF2 hash as `oauth_password_hash` in the config file
//! (or prints the line); `approve` prints a one-time code (10 minutes, stored hashed);
//! `clients` lists registered clients; `revoke` ends a client and every token of it. It works on
//! the database directly and never prints a password or token.

use super::{load_config, CliError};
use crate::config::Sources;
use crate::store::Store;
use std::io::Read;

const USAGE: &str = "usage: claudecron oauth set-password [--print] | approve | clients [--json] | revoke CLIENT_ID";

pub fn run(rest: &[String], sources: &Sources) -> Result<(), CliError> {
    let args: Vec<&str> = rest.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["set-password"] => set_password(sources, false),
        ["set-password", "--print"] => set_password(sources, true),
        ["approve"] => approve(sources),
        ["clients"] => clients(sources, false),
        ["clients", "--json"] => clients(sources, true),
        ["revoke", id] if !id.starts_with("--") => revoke(sources, id),
        _ => Err(CliError::Usage(USAGE.into())),
    }
}

fn open_store(sources: &Sources) -> Result<Store, CliError> {
    let config = load_config(sources)?;
    Store::open(&config.db_path)
        .map_err(|e| CliError::Failed(format!("database {}: {e}", config.db_path.display())))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The password from stdin (its first line), at least 12 characters.
fn read_password() -> Result<String, CliError> {
    eprintln!("Type the owner password for the sign-in page (at least 12 characters), then Enter:");
    let mut text = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|e| CliError::Failed(format!("reading the password from stdin: {e}")))?;
    let password = text.lines().next().unwrap_or("").to_string();
    if password.chars().count() < 12 {
        return Err(CliError::Usage(
            "the password must be at least 12 characters (it is typed on the sign-in page; guesses are rate-limited)".into(),
        ));
    }
    Ok(password)
}

fn set_password(sources: &Sources, print_only: bool) -> Result<(), CliError> {
    let config = load_config(sources)?;
    let password = read_password()?;
    let mut salt = [0u8; 16];
    crate::ids::fill_random(&mut salt)
        .map_err(|e| CliError::Failed(format!("no randomness: {e}")))?;
    let hash = crate::oauth::hash_password(&password, &salt);
    let line = format!("oauth_password_hash = \"{hash}\"");
    if print_only {
        println!("{hash}");
        return Ok(());
    }
    let Some(path) = config.source_file.clone() else {
        println!("No config file is in use; add this line to it (or set CLAUDECRON_OAUTH_PASSWORD_HASH):\n{line}");
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::Failed(format!("reading {}: {e}", path.display())))?;
    let mut replaced = false;
    let mut out: Vec<String> = text
        .lines()
        .map(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            if key == "oauth_password_hash" && !replaced {
                replaced = true;
                line.clone()
            } else {
                l.to_string()
            }
        })
        .collect();
    if !replaced {
        // A top-level key: before the first table (`[[notify_channels]]`), or it would join it.
        let at = out
            .iter()
            .position(|l| l.trim_start().starts_with('['))
            .unwrap_or(out.len());
        out.insert(at, line);
    }
    let new_text = out.join("\n") + "\n";
    // The new text must still be a valid config before it replaces the old one.
    new_text.parse::<toml::Table>().map_err(|e| {
        CliError::Failed(format!("{} would not be valid TOML: {e}", path.display()))
    })?;
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, new_text)
        .and_then(|()| {
            if let Ok(meta) = std::fs::metadata(&path) {
                // The same mode, owner and group (root writing the service's 0640 root:claudecron
                // config must not leave it unreadable for the service).
                use std::os::unix::fs::MetadataExt;
                std::fs::set_permissions(&tmp, meta.permissions())?;
                let _ = std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()));
            }
            std::fs::rename(&tmp, &path)
        })
        .map_err(|e| CliError::Failed(format!("writing {}: {e}", path.display())))?;
    // Read back as the server will: the hash must be what the config now says.
    let reread = load_config(sources)
        .ok()
        .and_then(|c| c.oauth.password_hash);
    if reread.as_deref() != Some(hash.as_str()) {
        let _ = std::fs::write(&path, &text);
        return Err(CliError::Failed(format!(
            "{} did not read back with the new oauth_password_hash (an environment variable CLAUDECRON_OAUTH_PASSWORD_HASH overrides it?); the file is unchanged",
            path.display()
        )));
    }
    println!(
        "oauth_password_hash set in {}; restart the server to use it (systemctl restart claudecron)",
        path.display()
    );
    Ok(())
}

fn approve(sources: &Sources) -> Result<(), CliError> {
    let store = open_store(sources)?;
    let raw =
        crate::ids::random_hex(8).map_err(|e| CliError::Failed(format!("no randomness: {e}")))?;
    let code = format!(
        "{}-{}-{}-{}",
        &raw[0..4],
        &raw[4..8],
        &raw[8..12],
        &raw[12..16]
    );
    store
        .oauth_add_approval(
            &crate::oauth::secret_hash(&code),
            now() + crate::oauth::APPROVAL_SECS,
        )
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!("{code}");
    eprintln!(
        "one-time code for the sign-in page: valid {} minutes, once",
        crate::oauth::APPROVAL_SECS / 60
    );
    Ok(())
}

fn clients(sources: &Sources, json: bool) -> Result<(), CliError> {
    let store = open_store(sources)?;
    let list = store
        .oauth_clients()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return Ok(());
    }
    if list.is_empty() {
        println!("no OAuth clients");
        return Ok(());
    }
    println!(
        "{:<40} {:<10} {:<8} {:<7} NAME",
        "CLIENT_ID", "KIND", "GRANTS", "STATE"
    );
    for c in &list {
        let id: String = c.client_id.chars().take(40).collect();
        let name: String = c
            .name
            .chars()
            .filter(|ch| !ch.is_control())
            .take(60)
            .collect();
        let state = if c.revoked { "revoked" } else { "active" };
        println!(
            "{id:<40} {:<10} {:<8} {state:<7} {name}",
            c.kind, c.active_grants
        );
    }
    Ok(())
}

fn revoke(sources: &Sources, client_id: &str) -> Result<(), CliError> {
    let store = open_store(sources)?;
    match store.oauth_revoke_client(client_id, now()) {
        Ok(true) => {
            println!("revoked {client_id}: its tokens stop working now");
            Ok(())
        }
        Ok(false) => Err(CliError::Failed(format!(
            "no OAuth client {client_id:?}; see `claudecron oauth clients`"
        ))),
        Err(e) => Err(CliError::Failed(e.to_string())),
    }
}
