//! The command line (SPEC §7): argument parsing and the small commands (`check`, `token`,
//! `preview-schedule`); `serve` hands over to the server module. Usage errors say what was
//! expected. It prints for the user; it never prints a token unless asked (`token`).

pub mod api_docs;
mod approve;
mod client_config;
mod crontab;
mod export;
mod flags;
mod forward;
mod health;
mod import;
mod oauth;
mod ops;
mod remote;
mod safety;
mod secret;

use crate::config::{self, Config, Sources};
use flags::split_flag;
use std::path::PathBuf;

pub const USAGE: &str = "claudecron — schedule and run work for Claude over MCP (Streamable HTTP)

Usage:
  claudecron serve [--config FILE] [--host HOST] [--port PORT] [--db PATH]
  claudecron check [--config FILE]
  claudecron token [--rotate] [--config FILE]
  claudecron preview-schedule EXPR [--tz TZ] [--count N]
  claudecron client-config [--url URL] [--config FILE]
  claudecron backup DEST [--config FILE]
  claudecron api-docs
  claudecron hook [--url URL] [--token TOKEN]   (a Claude Code hook payload on stdin)
  claudecron tasks [--json]
  claudecron task NAME [--json]
  claudecron runs [NAME] [--status S] [--limit N] [--json]
  claudecron logs RUN [--follow] [--json]
  claudecron run NAME [--wait] [--json]
  claudecron cancel RUN [--json]
  claudecron enable NAME [--json]
  claudecron disable NAME [--json]
  claudecron pause-all REASON... [--json]   (or: pause REASON...)
  claudecron resume-all [--json]            (or: resume)
  claudecron pending [--json] [--config FILE]
  claudecron approve TASK --content HASH [TASK --content HASH...] | TASK...|--all (asks on a terminal) | --init-key [--json] [--config FILE]
  claudecron secret set NAME|list|rm NAME [--config FILE]   (set: the value on stdin)
  claudecron import-crontab FILE|-|--user [--dry-run] [--tz TZ] [--system] [--disabled] [--json]
  claudecron export --format systemd|k8s|crontab [TASK...] [--image IMAGE] [--out DIR] [--json]
  claudecron health [--url URL] [--config FILE]
  claudecron oauth set-password [--print] | approve | clients [--json] | revoke CLIENT_ID
  claudecron --version
  claudecron --help

Commands:
  serve             run the server (MCP endpoint /mcp, health at /health)
  check             load and validate the config and the database; print the effective settings
  token             print the bearer token (--rotate: replace it; restart the server afterwards)
  preview-schedule  show a cron expression in words and its next fire times
  client-config     print ready-to-paste setup for Claude Code, Claude Desktop and hooks
  backup            copy the live database to DEST (a file, or a directory for a dated file), checked
  api-docs          print docs/API.md (the tools, from the server's own definitions)
  hook              forward a hook payload from stdin to the server (2 s at most; always exit 0)
  tasks             list the server's tasks: name, enabled, next run, last run, trigger in words
  task              show one task in full, its next fire times and last runs
  runs              list runs newest first, of one task or all
  logs              print a run's output; --follow prints it as it comes until the run ends
  run               start a run of a task now; --wait follows its output until it ends
  cancel            cancel a queued or running run
  enable            enable a task (re-arms its triggers)
  disable           disable a task (disarms its triggers; nothing is deleted)
  pause-all         pause everything (no fires, manual runs refused; flags kept) until resume-all
  resume-all        end the pause; fires missed meanwhile follow each task's catch_up
  pause             the same as pause-all
  resume            the same as resume-all
  pending           on the host: the tasks waiting for the owner's approval, with what approving binds
  approve           on the host, as the approval key's owner: sign tasks' current content (require_approval); --init-key makes the key pair
  secret            on the host: the secrets task env values refer to by name (values never shown)
  import-crontab    create a bash task per crontab line (cronie rules); --dry-run only shows them
  export            the tasks as systemd .service+.timer units, Kubernetes CronJobs or a crontab
  health            GET the server's /health: exit 0 when it answers 200, 1 otherwise (5 s at most)
  oauth             claude.ai connector sign-in: set-password, approve, clients, revoke CLIENT_ID

The task and run commands talk to the running server: --url URL (default: the config's host and
port), --token TOKEN (default: $CLAUDECRON_TOKEN, auth_tokens, the token file). Exit codes:
0 ok; 1 failed (a run that did not succeed, a task or run not found, a refused request);
2 usage or configuration error; 3 server unreachable or not answering as claudecron;
4 token refused.

Settings come from the TOML config file (--config, $CLAUDECRON_CONFIG, ~/.claudecron/config.toml,
/etc/claudecron/config.toml), then CLAUDECRON_<KEY> environment variables, then flags.
";

/// The commands, as named in USAGE.
const COMMANDS: &[&str] = &[
    "serve",
    "check",
    "token",
    "preview-schedule",
    "client-config",
    "backup",
    "api-docs",
    "hook",
    "health",
    "tasks",
    "task",
    "runs",
    "logs",
    "run",
    "cancel",
    "enable",
    "disable",
    "pause-all",
    "resume-all",
    "pause",
    "resume",
    "pending",
    "approve",
    "secret",
    "import-crontab",
    "export",
    "oauth",
];

/// The usage of one command: its line of USAGE, what it does, and where settings come from.
fn command_usage(command: &str) -> Option<String> {
    let named = |line: &str| line.split_whitespace().next() == Some(command);
    // An alias (`pause`) shares the synopsis of the command it stands for (`pause-all`).
    let listed = safety::canonical(command);
    let synopsis = USAGE.lines().find(|l| {
        l.trim_start()
            .strip_prefix("claudecron ")
            .is_some_and(|rest| rest.split_whitespace().next() == Some(listed))
    })?;
    let what = USAGE
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .find(|l| named(l))?
        .trim_start()
        .strip_prefix(command)?
        .trim();
    let settings = &USAGE[USAGE.find("Settings come from")?..];
    Some(format!(
        "claudecron {command} — {what}\n\nUsage:\n{synopsis}\n\n{settings}"
    ))
}

/// Exit codes: 0 ok, 1 failure at run time, 2 usage or configuration error, 3 server
/// unreachable, 4 token refused (the last two from the commands that talk to the server).
pub fn main(args: Vec<String>) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(CliError::Usage(msg)) => {
            eprintln!("claudecron: {msg}\nRun `claudecron --help` for usage.");
            2
        }
        Err(CliError::Config(msg)) => {
            eprintln!("claudecron: configuration error: {msg}");
            2
        }
        Err(CliError::Failed(msg)) => {
            eprintln!("claudecron: {msg}");
            1
        }
        Err(CliError::Unreachable(msg)) => {
            eprintln!("claudecron: {msg}");
            3
        }
        Err(CliError::Denied(msg)) => {
            eprintln!("claudecron: {msg}");
            4
        }
    }
}

#[derive(Debug)]
pub enum CliError {
    Usage(String),
    Config(String),
    Failed(String),
    /// The server could not be reached, or did not answer as claudecron (exit 3).
    Unreachable(String),
    /// The server refused the token (exit 4).
    Denied(String),
}

/// Parsed global flags plus what is left for the command.
struct Parsed {
    command: String,
    sources: Sources,
    rest: Vec<String>,
}

fn parse(args: Vec<String>) -> Result<Parsed, CliError> {
    let mut sources = Sources::from_process();
    let mut command: Option<String> = None;
    let mut rest = Vec::new();
    let mut iter = args.into_iter().skip(1);
    while let Some(arg) = iter.next() {
        let (flag, inline) = split_flag(&arg);
        let flag = flag.to_string();
        let mut value = |name: &str| -> Result<String, CliError> {
            match inline.clone().or_else(|| iter.next()) {
                Some(v) => Ok(v),
                None => Err(CliError::Usage(format!("{name} needs a value"))),
            }
        };
        match flag.as_str() {
            "--config" => sources.config_file = Some(PathBuf::from(value("--config FILE")?)),
            "--host" => sources.flags.push(("host".into(), value("--host HOST")?)),
            "--port" => sources.flags.push(("port".into(), value("--port PORT")?)),
            "--db" => sources.flags.push(("db_path".into(), value("--db PATH")?)),
            _ if command.is_none() && !arg.starts_with('-') => command = Some(arg),
            _ if command.is_none()
                && (arg == "--help" || arg == "-h" || arg == "--version" || arg == "-V") =>
            {
                command = Some(arg)
            }
            _ => rest.push(arg),
        }
    }
    Ok(Parsed {
        command: command.unwrap_or_default(),
        sources,
        rest,
    })
}

fn load_config(sources: &Sources) -> Result<Config, CliError> {
    config::load(sources).map_err(CliError::Config)
}

fn no_extra(rest: &[String], command: &str) -> Result<(), CliError> {
    match rest.first() {
        Some(arg) => Err(CliError::Usage(format!(
            "unexpected argument \"{arg}\" for `{command}`"
        ))),
        None => Ok(()),
    }
}

pub fn run(args: Vec<String>) -> Result<(), CliError> {
    let parsed = parse(args)?;
    // `claudecron COMMAND --help` (or -h, anywhere after the command): that command's usage,
    // before anything else is read or started.
    let wants_help = COMMANDS.contains(&parsed.command.as_str())
        && parsed.rest.iter().any(|a| a == "--help" || a == "-h");
    if parsed.command != "serve" || wants_help {
        // A printing command piped into `head` should end quietly when the pipe closes, as
        // other command-line tools do; the server keeps SIGPIPE ignored for its sockets.
        crate::sys::default_sigpipe();
    }
    if wants_help {
        print!("{}", command_usage(&parsed.command).unwrap_or(USAGE.into()));
        return Ok(());
    }
    match parsed.command.as_str() {
        "--help" | "-h" | "help" => {
            // `claudecron help COMMAND`: that command's usage.
            match parsed.rest.first().and_then(|c| command_usage(c)) {
                Some(usage) => print!("{usage}"),
                None => print!("{USAGE}"),
            }
            Ok(())
        }
        "--version" | "-V" | "version" => {
            println!("claudecron {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        "serve" => {
            no_extra(&parsed.rest, "serve")?;
            let config = load_config(&parsed.sources)?;
            crate::http::server::serve(config).map_err(CliError::Failed)
        }
        "check" => {
            no_extra(&parsed.rest, "check")?;
            check(&parsed.sources)
        }
        "token" => {
            let rotate = match parsed.rest.as_slice() {
                [] => false,
                [flag] if flag == "--rotate" => true,
                [other, ..] => {
                    return Err(CliError::Usage(format!(
                        "unexpected argument \"{other}\" for `token`; accepted: --rotate"
                    )))
                }
            };
            let config = load_config(&parsed.sources)?;
            token(&config, rotate)
        }
        "preview-schedule" => preview(&parsed.rest, &parsed.sources),
        "hook" => {
            crate::cli::forward::run(&parsed.rest, &parsed.sources);
            Ok(())
        }
        "health" => crate::cli::health::run(&parsed.rest, &parsed.sources),
        "import-crontab" => import::run(&parsed.rest, &parsed.sources),
        "oauth" => oauth::run(&parsed.rest, &parsed.sources),
        c if ops::COMMANDS.contains(&c) => ops::run(c, &parsed.rest, &parsed.sources),
        c if safety::COMMANDS.contains(&c) => safety::run(c, &parsed.rest, &parsed.sources),
        c if approve::COMMANDS.contains(&c) => approve::run(c, &parsed.rest, &parsed.sources),
        secret::COMMAND => secret::run(&parsed.rest, &parsed.sources),
        "client-config" => client_config(&parsed.rest, &parsed.sources),
        "backup" => backup(&parsed.rest, &parsed.sources),
        "api-docs" => {
            no_extra(&parsed.rest, "api-docs")?;
            print!("{}", crate::cli::api_docs::render());
            Ok(())
        }
        "" => match parsed.rest.first() {
            // Only options and no command: the first one is not a known global option.
            Some(option) => Err(CliError::Usage(format!(
                "unknown option \"{option}\"; expected a command ({}), --help or --version",
                COMMANDS.join(", ")
            ))),
            None => Err(CliError::Usage(format!(
                "no command given; expected one of: {}",
                COMMANDS.join(", ")
            ))),
        },
        other => Err(CliError::Usage(format!(
            "unknown command \"{other}\"; expected one of: {}",
            COMMANDS.join(", ")
        ))),
    }
}

fn client_config(rest: &[String], sources: &Sources) -> Result<(), CliError> {
    let mut url: Option<String> = None;
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        match split_flag(arg) {
            ("--url", inline) => {
                url = Some(inline.or_else(|| iter.next().cloned()).ok_or_else(|| {
                    CliError::Usage(
                        "--url needs a value, e.g. --url https://mcp.example.com/cron".into(),
                    )
                })?)
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "unexpected argument \"{arg}\" for `client-config`; accepted: --url URL"
                )))
            }
        }
    }
    let config = load_config(sources)?;
    let base = url
        .or_else(|| config.public_url.clone())
        .unwrap_or_else(|| {
            crate::cli::forward::default_url(&config)
                .trim_end_matches("/hooks")
                .to_string()
        });
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(CliError::Usage(format!(
            "--url \"{base}\" is not an http(s) URL; e.g. https://mcp.example.com/cron"
        )));
    }
    let token = match config.auth {
        config::AuthMode::None => "(none: auth is off)".to_string(),
        config::AuthMode::Token => crate::token::accepted_tokens(&config)
            .map_err(CliError::Failed)?
            .into_iter()
            .next()
            .unwrap_or_default(),
    };
    print!("{}", crate::cli::client_config::render(&base, &token));
    print!(
        "{}",
        crate::cli::client_config::connector(&base, config.oauth.enabled)
    );
    Ok(())
}

fn backup(rest: &[String], sources: &Sources) -> Result<(), CliError> {
    let dest = match rest {
        [dest] if !dest.starts_with("--") => PathBuf::from(dest),
        _ => {
            return Err(CliError::Usage(
                "backup needs one destination: claudecron backup /var/backups/claudecron.db (or a directory)".into(),
            ))
        }
    };
    let config = load_config(sources)?;
    let dest = if dest.is_dir() {
        dest.join(format!(
            "claudecron-{}.db",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    } else {
        dest
    };
    if dest == config.db_path {
        return Err(CliError::Usage(
            "the destination is the live database itself".into(),
        ));
    }
    if !config.db_path.exists() {
        return Err(CliError::Failed(format!(
            "no database at {} (db_path); nothing to back up",
            config.db_path.display()
        )));
    }
    let store = crate::store::Store::open(&config.db_path)
        .map_err(|e| CliError::Failed(format!("database {}: {e}", config.db_path.display())))?;
    let started = std::time::Instant::now();
    let (tasks, runs) = store
        .backup_to(&dest)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!(
        "backed up {} to {} in {} ms: {tasks} tasks, {runs} runs, integrity ok",
        config.db_path.display(),
        dest.display(),
        started.elapsed().as_millis()
    );
    Ok(())
}

fn check(sources: &Sources) -> Result<(), CliError> {
    let config = load_config(sources)?;
    println!(
        "config: {}",
        config
            .source_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(no file; defaults, environment and flags)".into())
    );
    for (key, value) in config.describe() {
        println!("  {key:<22} = {value}");
    }
    let store = crate::store::Store::open(&config.db_path)
        .map_err(|e| CliError::Failed(format!("database {}: {e}", config.db_path.display())))?;
    let health = store
        .quick_check()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let version = store
        .schema_version()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let (tasks, enabled) = store
        .count_tasks()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!(
        "database: {} (schema version {version}, integrity {health}, {tasks} tasks, {enabled} enabled)",
        config.db_path.display()
    );
    match config.auth {
        config::AuthMode::None => println!("auth: none (loopback only)"),
        config::AuthMode::Token if !config.auth_tokens.is_empty() => {
            println!("auth: bearer token from auth_tokens")
        }
        config::AuthMode::Token => println!(
            "auth: bearer token in {} ({})",
            config.token_file.display(),
            if config.token_file.exists() {
                "present"
            } else {
                "created on first start"
            }
        ),
    }
    if health != "ok" {
        return Err(CliError::Failed(format!(
            "database integrity check: {health}"
        )));
    }
    println!("ok");
    Ok(())
}

fn token(config: &Config, rotate: bool) -> Result<(), CliError> {
    if config.auth == config::AuthMode::None {
        return Err(CliError::Failed(
            "auth is \"none\": the server accepts no token; set auth = \"token\"".into(),
        ));
    }
    if !config.auth_tokens.is_empty() {
        if rotate {
            return Err(CliError::Failed(
                "tokens come from auth_tokens in the config or environment; change them there"
                    .into(),
            ));
        }
        println!("{}", config.auth_tokens[0]);
        return Ok(());
    }
    let value = if rotate {
        let t = crate::token::rotate(&config.token_file).map_err(CliError::Failed)?;
        eprintln!(
            "New token written to {}. Restart the server and update your clients.",
            config.token_file.display()
        );
        t
    } else {
        crate::token::read_or_create(&config.token_file).map_err(CliError::Failed)?
    };
    println!("{value}");
    Ok(())
}

fn preview(rest: &[String], sources: &Sources) -> Result<(), CliError> {
    let mut expr: Option<String> = None;
    let mut tz: Option<String> = None;
    let mut count: usize = 5;
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = split_flag(arg);
        match flag {
            "--tz" | "--timezone" => {
                tz = Some(inline.or_else(|| iter.next().cloned()).ok_or_else(|| {
                    CliError::Usage("--tz needs an IANA zone, e.g. --tz Europe/Moscow".into())
                })?)
            }
            "--count" => {
                let text = inline.or_else(|| iter.next().cloned()).unwrap_or_default();
                count = text
                    .parse()
                    .ok()
                    .filter(|n| (1..=50).contains(n))
                    .ok_or_else(|| {
                        CliError::Usage(format!(
                            "--count \"{text}\" is not accepted; a whole number from 1 to 50"
                        ))
                    })?;
            }
            _ if expr.is_none() && !arg.starts_with("--") => expr = Some(arg.clone()),
            _ => {
                return Err(CliError::Usage(format!(
                    "unexpected argument \"{arg}\"; usage: claudecron preview-schedule EXPR [--tz TZ] [--count N] (quote EXPR)"
                )))
            }
        }
    }
    let expr = expr.ok_or_else(|| {
        CliError::Usage(
            "preview-schedule needs a cron expression, e.g. claudecron preview-schedule \"0 9 * * 1-5\" --tz Europe/Moscow".into(),
        )
    })?;
    let tz = match tz {
        Some(tz) => tz,
        None => config::load(sources)
            .map(|c| c.default_timezone)
            .unwrap_or_else(|_| "UTC".into()),
    };
    let preview = crate::tasks::catalog::preview_schedule(&expr, &tz, count, chrono::Utc::now())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    println!(
        "{}  ({})",
        preview["schedule"].as_str().unwrap_or_default(),
        preview["timezone"].as_str().unwrap_or_default()
    );
    println!("{}", preview["description"].as_str().unwrap_or_default());
    println!("Next {count} fire times:");
    for t in preview["next_runs"].as_array().into_iter().flatten() {
        println!(
            "  {}   ({})",
            t["local"].as_str().unwrap_or_default(),
            t["utc"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}
