//! Command-line flag spelling shared by the commands: `--flag=value` next to `--flag value`.

/// `--flag=value` → (`--flag`, the value); anything else → (the argument, None).
pub fn split_flag(arg: &str) -> (&str, Option<String>) {
    match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
        _ => (arg, None),
    }
}
