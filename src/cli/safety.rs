//! The operator's safety switches against the running server: `pause-all REASON` and
//! `resume-all`, through `cli::remote` (the same tools the model has). It never touches the
//! database and never prints a token.

use super::remote::{common, Remote};
use super::CliError;
use crate::config::Sources;
use serde_json::json;

/// The commands this module answers (`pause` and `resume`, SPEC §9's names, are the same).
pub const COMMANDS: &[&str] = &["pause-all", "resume-all", "pause", "resume"];

/// The name a command is listed under in the usage (`pause` is `pause-all`, `resume` is
/// `resume-all`); any other command is its own.
pub fn canonical(command: &str) -> &str {
    match command {
        "pause" => "pause-all",
        "resume" => "resume-all",
        other => other,
    }
}

/// Run one of [`COMMANDS`].
pub fn run(command: &str, args: &[String], sources: &Sources) -> Result<(), CliError> {
    let command = canonical(command);
    let c = common(args)?;
    if let Some(flag) = c.rest.iter().find(|a| a.starts_with("--")) {
        return Err(CliError::Usage(format!(
            "\"{flag}\" is not accepted by `{command}`; accepted: --json, --url URL, --token TOKEN"
        )));
    }
    let answer = if command == "pause-all" {
        let reason = c.rest.join(" ");
        if reason.trim().is_empty() {
            return Err(CliError::Usage(
                "`pause-all` needs a reason: claudecron pause-all REASON... (e.g. claudecron pause-all disk replacement)".into(),
            ));
        }
        Remote::connect(&c, sources)?.call("claudecron_pause_all", json!({"reason": reason}))?
    } else {
        if let Some(arg) = c.rest.first() {
            return Err(CliError::Usage(format!(
                "`resume-all` takes no argument (\"{arg}\" given)"
            )));
        }
        Remote::connect(&c, sources)?.call("claudecron_resume_all", json!({}))?
    };
    if c.json {
        println!("{answer}");
        return Ok(());
    }
    let text = |k: &str| answer[k].as_str().unwrap_or("").to_string();
    match (
        command,
        answer["already_paused"].as_bool(),
        answer["was_paused"].as_bool(),
    ) {
        ("pause-all", Some(true), _) => println!(
            "already paused since {} ({}); nothing changed",
            text("since"),
            text("reason")
        ),
        ("pause-all", _, _) => println!(
            "paused since {}: {}\nnothing runs until `claudecron resume-all`",
            text("since"),
            text("reason")
        ),
        (_, _, Some(true)) => println!(
            "resumed (paused since {}: {}); fires missed meanwhile follow each task's catch_up",
            text("since"),
            text("reason")
        ),
        _ => println!("nothing was paused"),
    }
    Ok(())
}
