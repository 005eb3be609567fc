//! The host's secrets store from the command line: `secret set NAME` (the value read from stdin,
//! never from an argument, so it stays out of shell history and `ps`), `secret list` (names
//! only), `secret rm NAME`. It never prints a value; the file is `<data dir>/secrets.json`, 0600.

use super::CliError;
use crate::config::Sources;
use crate::secrets;
use std::io::{IsTerminal, Read};

/// The command this module answers.
pub const COMMAND: &str = "secret";

const USAGE: &str =
    "`secret` needs an action: secret set NAME (value on stdin), secret list, secret rm NAME";

pub fn run(args: &[String], sources: &Sources) -> Result<(), CliError> {
    let config = super::load_config(sources)?;
    let file = secrets::path(&config.data_dir());
    let failed = CliError::Failed;
    match args {
        [action, name] if action == "set" => {
            secrets::check_name(name).map_err(CliError::Usage)?;
            owner_check(&config)?;
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("type the value of \"{name}\", then Enter and Ctrl-D (it is not shown back)");
            }
            let mut raw = Vec::new();
            stdin
                .by_ref()
                .take(secrets::VALUE_MAX as u64 + 3)
                .read_to_end(&mut raw)
                .map_err(|e| failed(format!("cannot read the value from stdin: {e}")))?;
            let value = secrets::clean_value(&raw).map_err(CliError::Usage)?;
            let replaced = secrets::set(&file, name, &value).map_err(failed)?;
            println!(
                "secret \"{name}\" {} in {} (mode 0600); tasks refer to it as {{\"secret\": \"{name}\"}} in env",
                if replaced { "replaced" } else { "set" },
                file.display()
            );
            Ok(())
        }
        [action] if action == "list" => {
            let names = secrets::load(&file).map_err(failed)?;
            if names.is_empty() {
                println!("no secrets (set one with `claudecron secret set NAME`, value on stdin)");
            }
            for name in names.keys() {
                println!("{name}");
            }
            Ok(())
        }
        [action, name] if action == "rm" => {
            secrets::check_name(name).map_err(CliError::Usage)?;
            owner_check(&config)?;
            if secrets::remove(&file, name).map_err(failed)? {
                println!("secret \"{name}\" removed; runs of tasks that refer to it now fail, naming it");
                Ok(())
            } else {
                Err(failed(format!(
                    "no secret is named \"{name}\"; `claudecron secret list` shows the names"
                )))
            }
        }
        [action, ..] if action == "set" || action == "rm" => Err(CliError::Usage(format!(
            "`secret {action}` takes one NAME (the value of `set` comes on stdin, never as an argument)"
        ))),
        _ => Err(CliError::Usage(USAGE.into())),
    }
}

/// The store is written as the data directory's owner (see `approve::owner_check`).
fn owner_check(config: &crate::config::Config) -> Result<(), CliError> {
    let dir = config.data_dir();
    super::approve::owner_check(&dir, "secret")
}
