//! The process's log: the `log` crate's records as lines `[LEVEL target] message`, each in one
//! write to stderr or to the configured log file. claudecron's own records pass at the configured
//! level, other crates' at `warn` and above. Must never panic or block on anything but that one
//! write: a log that cannot be written loses the line, never the request.
//!
//! (It replaced env_logger, whose formatting cost ~10k instructions per access-log line, an
//! eighth of a whole `ping` request; the line format is the same.)

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Where the lines go.
enum Sink {
    Stderr,
    File(Mutex<std::fs::File>),
}

struct Logger {
    own: LevelFilter,
    sink: Sink,
}

/// The level a `log_level` setting names (`off` for anything else; config validation has
/// already refused other values).
pub fn level_filter(name: &str) -> LevelFilter {
    match name {
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => LevelFilter::Off,
    }
}

/// Whether a record of `target` at `level` is written, with claudecron's records at `own`.
fn passes(own: LevelFilter, target: &str, level: Level) -> bool {
    let ours = target == "claudecron" || target.starts_with("claudecron::");
    level <= if ours { own } else { LevelFilter::Warn }
}

/// One record as its line, newline included.
fn format_line(out: &mut String, level: Level, target: &str, args: &std::fmt::Arguments<'_>) {
    out.clear();
    let _ = write!(out, "[{:<5} {target}] {args}", level.as_str());
    out.push('\n');
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        passes(self.own, metadata.target(), metadata.level())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        thread_local! {
            static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let write = |line: &str| match &self.sink {
            Sink::Stderr => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Sink::File(file) => {
                if let Ok(mut f) = file.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
        };
        // A record formatted while this thread formats another (a Display that logs) gets a
        // buffer of its own.
        let done = LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                format_line(&mut line, record.level(), record.target(), record.args());
                write(&line);
                // A rare huge line does not stay with the thread.
                if line.capacity() > 64 * 1024 {
                    *line = String::new();
                }
                true
            }
            Err(_) => false,
        });
        if !done {
            let mut line = String::new();
            format_line(&mut line, record.level(), record.target(), record.args());
            write(&line);
        }
    }

    fn flush(&self) {
        match &self.sink {
            Sink::Stderr => {
                let _ = std::io::stderr().flush();
            }
            Sink::File(file) => {
                if let Ok(mut f) = file.lock() {
                    let _ = f.flush();
                }
            }
        }
    }
}

/// Installs the logger: claudecron's records at `level` (a `log_level` value), to the file at
/// `path` (appended, created when missing) or to stderr. A second call (tests serving twice in
/// one process) keeps the first logger.
pub fn init(level: &str, path: Option<&std::path::Path>) -> Result<(), String> {
    let sink = match path {
        Some(path) => Sink::File(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("log_path {}: {e}", path.display()))?,
        )),
        None => Sink::Stderr,
    };
    let own = level_filter(level);
    // Leaked once: the logger lives as long as the process (a refused second one is a few bytes).
    let logger: &'static Logger = Box::leak(Box::new(Logger { own, sink }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(own.max(LevelFilter::Warn));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_env_logger_shape() {
        let mut out = String::new();
        format_line(
            &mut out,
            Level::Info,
            "claudecron::http::server",
            &format_args!("{} GET {} -> {}", "127.0.0.1", "/health", 200),
        );
        assert_eq!(
            out,
            "[INFO  claudecron::http::server] 127.0.0.1 GET /health -> 200\n"
        );
        format_line(&mut out, Level::Error, "x", &format_args!("boom"));
        assert_eq!(out, "[ERROR x] boom\n");
    }

    #[test]
    fn our_records_pass_at_the_setting_and_others_at_warn() {
        let own = level_filter("debug");
        assert!(passes(own, "claudecron::engine", Level::Debug));
        assert!(passes(own, "claudecron", Level::Info));
        assert!(!passes(own, "claudecron::engine", Level::Trace));
        assert!(!passes(own, "claudecronx", Level::Info));
        assert!(!passes(own, "ureq", Level::Info));
        assert!(passes(own, "ureq", Level::Warn));
        let off = level_filter("off");
        assert!(!passes(off, "claudecron", Level::Error));
        assert!(passes(off, "notify", Level::Error));
        assert_eq!(level_filter("warn"), LevelFilter::Warn);
    }
}
