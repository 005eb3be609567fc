//! Secrets by reference: the host's secrets store (`<data dir>/secrets.json`, mode 0600, managed
//! by `claudecron secret set|list|rm` on the host), a task's `env` references
//! (`{"secret": NAME}`) resolved into values at run time, and the masking of those values in
//! whatever a run records. It never logs, returns or prints a secret's value; errors name the
//! secret, never its value.

use crate::tasks::model::EnvValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The store's file name in the data directory.
pub const FILE_NAME: &str = "secrets.json";
/// What replaces a secret's value in recorded output.
pub const MASK: &str = "***";
/// The longest name.
pub const NAME_MAX: usize = 64;
/// The longest value (as an environment value).
pub const VALUE_MAX: usize = 32 * 1024;
/// At most this many secrets in the store.
pub const COUNT_MAX: usize = 1000;

/// The store's path in `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Whether `name` can name a secret: 1 to 64 of letters, digits, `_`, `-`, `.`, starting with a
/// letter or digit. The error says what is accepted.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a secret name; accepted: 1 to {NAME_MAX} letters, digits, _ - . starting with a letter or digit",
            crate::util::head(name, 80)
        ))
    }
}

/// An env value given as an object: `{"secret": NAME}` and nothing else; the name.
pub fn reference(obj: &Map<String, Value>) -> Result<String, String> {
    let accepted = "a value is a string, or a secret reference {\"secret\": NAME} (NAME set by the owner on the host with `claudecron secret set NAME`)";
    if obj.len() != 1 {
        return Err(format!(
            "{accepted}; a reference takes exactly that one field"
        ));
    }
    match obj.get("secret") {
        Some(Value::String(name)) => check_name(name).map(|()| name.clone()),
        Some(_) => Err(format!("{accepted}; NAME is a string")),
        None => Err(format!(
            "unknown field \"{}\"; {accepted}",
            obj.keys().next().map(String::as_str).unwrap_or("")
        )),
    }
}

/// The secret names a task's env refers to, in order, without repeats.
pub fn referenced(env: &BTreeMap<String, EnvValue>) -> Vec<&str> {
    let mut names: Vec<&str> = env
        .values()
        .filter_map(|v| match v {
            EnvValue::Secret { secret } => Some(secret.as_str()),
            EnvValue::Text(_) => None,
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// A value given to `secret set`: one trailing line break (what `echo` adds) removed; empty
/// values, NUL bytes and values over `VALUE_MAX` refused.
pub fn clean_value(raw: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| "the value is not UTF-8 text; give it as text on stdin".to_string())?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    if text.is_empty() {
        return Err("the value on stdin is empty; pipe the secret in, e.g. `printf %s \"$TOKEN\" | claudecron secret set NAME`".into());
    }
    if text.contains('\0') {
        return Err("the value holds a NUL byte, which no environment variable can".into());
    }
    if text.len() > VALUE_MAX {
        return Err(format!(
            "the value is {} bytes; at most {VALUE_MAX}",
            text.len()
        ));
    }
    Ok(text.to_string())
}

/// Read the store (empty when the file does not exist). Refused when other users may read it
/// or it does not hold the store's JSON; the error names the file and what to do.
pub fn load(file: &Path) -> Result<BTreeMap<String, String>, String> {
    let meta = match fs::metadata(file) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(format!(
                "cannot read the secrets file {}: {e}",
                file.display()
            ))
        }
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the secrets file {} may be read by other users (mode {mode:o}), so it is not used; run: chmod 600 {}",
            file.display(),
            file.display()
        ));
    }
    let text = fs::read_to_string(file)
        .map_err(|e| format!("cannot read the secrets file {}: {e}", file.display()))?;
    let parsed: Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "the secrets file {} is not the store's JSON (line {}); fix or remove it",
            file.display(),
            e.line()
        )
    })?;
    let mut out = BTreeMap::new();
    for (name, value) in parsed["secrets"].as_object().into_iter().flatten() {
        if let Some(v) = value.as_str() {
            out.insert(name.clone(), v.to_string());
        }
    }
    Ok(out)
}

/// Write the whole store: a temporary file created 0600 beside it (owned like the data
/// directory when run by root), synced, then renamed over the old one.
fn save(file: &Path, secrets: &BTreeMap<String, String>) -> Result<(), String> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let body = serde_json::json!({ "version": 1, "secrets": secrets }).to_string();
    let written = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(body.as_bytes())?;
        f.sync_all()?;
        // Root managing the store of a service user: the file stays the service's.
        if let Ok(owner) = fs::metadata(dir) {
            let _ = std::os::unix::fs::chown(&tmp, Some(owner.uid()), Some(owner.gid()));
        }
        fs::rename(&tmp, file)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(format!(
            "cannot write the secrets file {}: {e}",
            file.display()
        ));
    }
    Ok(())
}

/// `secret set`: add or replace one secret; true when it replaced one.
pub fn set(file: &Path, name: &str, value: &str) -> Result<bool, String> {
    check_name(name)?;
    let mut secrets = load(file)?;
    if !secrets.contains_key(name) && secrets.len() >= COUNT_MAX {
        return Err(format!(
            "the store holds {COUNT_MAX} secrets, the limit; remove one first"
        ));
    }
    let replaced = secrets
        .insert(name.to_string(), value.to_string())
        .is_some();
    save(file, &secrets)?;
    Ok(replaced)
}

/// `secret rm`: remove one secret; false when there was none of that name.
pub fn remove(file: &Path, name: &str) -> Result<bool, String> {
    check_name(name)?;
    let mut secrets = load(file)?;
    if secrets.remove(name).is_none() {
        return Ok(false);
    }
    save(file, &secrets)?;
    Ok(true)
}

/// The names a task refers to that the store does not hold (for a warning when the task is
/// saved and shown); the error when the store cannot be read.
pub fn missing(env: &BTreeMap<String, EnvValue>, file: &Path) -> Result<Vec<String>, String> {
    let names = referenced(env);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let store = load(file)?;
    Ok(names
        .into_iter()
        .filter(|n| !store.contains_key(*n))
        .map(str::to_string)
        .collect())
}

/// A task's env with its references resolved, for one run, and the values to mask in what it
/// records. The error names the variable and the secret (never a value) and what to do.
pub struct Resolved {
    pub env: Vec<(String, String)>,
    pub masker: Masker,
}

pub fn resolve(env: &BTreeMap<String, EnvValue>, file: &Path) -> Result<Resolved, String> {
    let store = if referenced(env).is_empty() {
        BTreeMap::new()
    } else {
        load(file)?
    };
    let mut out = Vec::with_capacity(env.len());
    let mut values = Vec::new();
    for (key, value) in env {
        match value {
            EnvValue::Text(text) => out.push((key.clone(), text.clone())),
            EnvValue::Secret { secret } => match store.get(secret) {
                Some(v) if v.contains('\0') => {
                    return Err(format!(
                        "env {key}: the secret \"{secret}\" holds a NUL byte, which no environment variable can; set it again with `claudecron secret set {secret}`"
                    ))
                }
                Some(v) => {
                    out.push((key.clone(), v.clone()));
                    values.push(v.clone());
                }
                None => {
                    return Err(format!(
                        "env {key}: the secret \"{secret}\" is not set on this host; the owner sets it with `claudecron secret set {secret}` (value on stdin); the run was not started"
                    ))
                }
            },
        }
    }
    Ok(Resolved {
        env: out,
        masker: Masker::new(values),
    })
}

/// Replaces the values of a run's secrets with `MASK` in text the run records (output, live
/// output, the error). A multi-line value's lines of 4 or more characters are masked too, so a
/// key printed line by line is still hidden.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    values: Vec<String>,
}

impl Masker {
    pub fn new(values: Vec<String>) -> Masker {
        let mut all: Vec<String> = Vec::new();
        for v in values {
            if v.contains('\n') {
                all.extend(
                    v.lines()
                        .map(|l| l.trim_end_matches('\r'))
                        .filter(|l| l.trim().chars().count() >= 4)
                        .map(str::to_string),
                );
            }
            all.push(v);
        }
        // Longer first, so a value that contains another is masked whole.
        all.sort_by_key(|v| std::cmp::Reverse(v.len()));
        all.dedup();
        all.retain(|v| !v.is_empty());
        Masker { values: all }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret value replaced by `MASK`.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }

    /// A run's output masked, also where it was cut: a value cut by the end of the kept head
    /// (before `[… N bytes omitted …]`) or the start of the kept tail shows its start or its end
    /// there, which [`Masker::mask`] cannot match; such a piece is masked too, when it holds at
    /// least `EDGE_MIN` bytes of the value (or all but its last or first byte, for a shorter
    /// value).
    pub fn mask_output(&self, text: &str) -> String {
        let masked = self.mask(text);
        if self.values.is_empty() || !masked.contains(CUT_START) {
            return masked;
        }
        let mut out = String::with_capacity(masked.len());
        let mut rest = masked.as_str();
        while let Some(start) = rest.find(CUT_START) {
            let Some(len) = rest[start..].find(CUT_END).map(|e| e + CUT_END.len()) else {
                break;
            };
            out.push_str(&self.mask_cut_end(&rest[..start]));
            out.push_str(&rest[start..start + len]);
            rest = &rest[start + len..];
            let cut = self.cut_start_len(rest);
            if cut > 0 {
                out.push_str(MASK);
                rest = &rest[cut..];
            }
        }
        out.push_str(rest);
        out
    }

    /// `MASK` in place of the longest start of a value that `head` ends with.
    fn mask_cut_end(&self, head: &str) -> String {
        for v in &self.values {
            for k in (edge_min(v)..v.len()).rev() {
                if v.is_char_boundary(k) && head.ends_with(&v[..k]) {
                    return format!("{}{MASK}", &head[..head.len() - k]);
                }
            }
        }
        head.to_string()
    }

    /// How many bytes at the start of `tail` are the end of a value (0 for none).
    fn cut_start_len(&self, tail: &str) -> usize {
        for v in &self.values {
            for k in (edge_min(v)..v.len()).rev() {
                if v.is_char_boundary(v.len() - k) && tail.starts_with(&v[v.len() - k..]) {
                    return k;
                }
            }
        }
        0
    }

    /// Every string in `value` (keys too) masked: a value inside JSON text is escaped there
    /// (`"`, `\`), so the text itself cannot be masked.
    pub fn mask_value(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                let masked = self.mask(s);
                if masked != *s {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_value(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (k, mut v) in entries {
                    self.mask_value(&mut v);
                    map.insert(self.mask(&k), v);
                }
            }
            _ => {}
        }
    }
}

/// How the capture marks where it cut the output (`process::Capture::snapshot`).
const CUT_START: &str = "\n[… ";
const CUT_END: &str = " bytes omitted …]\n";

/// The shortest piece of a value masked at a cut: 3 bytes, or all but one of a shorter value.
fn edge_min(value: &str) -> usize {
    EDGE_MIN.min(value.len().saturating_sub(1)).max(1)
}

const EDGE_MIN: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_cut_where_the_output_was_cut_is_masked_on_both_sides() {
        let m = Masker::new(vec!["TOPSECRETvalue-4242".into()]);
        let cut = |head: &str, tail: &str| format!("{head}\n[… 9000 bytes omitted …]\n{tail}");
        assert_eq!(
            m.mask_output(&cut("xxxTOPSECRETval", "alue-4242 yy")),
            cut("xxx***", "*** yy")
        );
        // Whole values on either side, and text that only looks like a cut, as before.
        assert_eq!(
            m.mask_output(&cut("a TOPSECRETvalue-4242", "b")),
            cut("a ***", "b")
        );
        assert_eq!(m.mask_output("no cut TOPSECRETvalue-4242"), "no cut ***");
        // Two bytes of a value are too little to tell it from chance.
        assert_eq!(m.mask_output(&cut("xxTO", "42 z")), cut("xxTO", "42 z"));
    }

    #[test]
    fn strings_inside_json_are_masked_where_the_text_would_hide_them() {
        let m = Masker::new(vec!["pa\"ss\\word-9f3".into()]);
        let mut details = serde_json::json!({
            "permission_denials": [{"tool_input": {"command": "curl -u me:pa\"ss\\word-9f3 x"}}],
            "pa\"ss\\word-9f3": 1
        });
        assert!(
            !m.mask(&details.to_string()).contains("***"),
            "the escaped text hides it"
        );
        m.mask_value(&mut details);
        assert_eq!(
            details,
            serde_json::json!({
                "permission_denials": [{"tool_input": {"command": "curl -u me:*** x"}}],
                "***": 1
            })
        );
    }

    #[test]
    fn names_values_and_references_are_checked() {
        assert!(check_name("gh").is_ok() && check_name("GH_TOKEN.v2-x").is_ok());
        for bad in ["", "-x", "a b", "ä", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(clean_value(b"abc\n").unwrap(), "abc");
        assert_eq!(clean_value(b"abc\r\n").unwrap(), "abc");
        assert_eq!(clean_value(b"a\nb\n\n").unwrap(), "a\nb\n");
        assert!(clean_value(b"\n").is_err() && clean_value(b"a\0b").is_err());
        let obj = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(
            reference(&obj(serde_json::json!({"secret": "gh"}))).unwrap(),
            "gh"
        );
        assert!(reference(&obj(serde_json::json!({"secret": 1}))).is_err());
        assert!(reference(&obj(serde_json::json!({"name": "gh"}))).is_err());
        assert!(reference(&obj(serde_json::json!({"secret": "gh", "x": 1}))).is_err());
    }

    #[test]
    fn the_store_is_0600_and_resolves_or_names_the_missing_secret() {
        let dir = crate::util::TestDir::new("secrets");
        let file = path(dir.path());
        assert!(load(&file).unwrap().is_empty());
        assert!(!set(&file, "gh", "s3cr3t-value").unwrap());
        assert!(set(&file, "gh", "s3cr3t-value2").unwrap());
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let mut env = BTreeMap::new();
        env.insert("A".to_string(), EnvValue::Text("plain".into()));
        env.insert(
            "T".to_string(),
            EnvValue::Secret {
                secret: "gh".into(),
            },
        );
        let r = resolve(&env, &file).unwrap();
        assert!(r.env.contains(&("T".into(), "s3cr3t-value2".into())));
        assert_eq!(r.masker.mask("x s3cr3t-value2 y"), "x *** y");
        env.insert(
            "U".to_string(),
            EnvValue::Secret {
                secret: "nope".into(),
            },
        );
        let e = resolve(&env, &file).err().unwrap();
        assert!(e.contains("\"nope\"") && e.contains("env U") && !e.contains("s3cr3t"));
        assert_eq!(missing(&env, &file).unwrap(), vec!["nope".to_string()]);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&file).unwrap_err().contains("chmod 600"));
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(remove(&file, "gh").unwrap() && !remove(&file, "gh").unwrap());
    }

    #[test]
    fn multi_line_values_are_masked_line_by_line() {
        let m = Masker::new(vec!["-----BEGIN-----\nAAAABBBB\nx\n".into()]);
        assert_eq!(m.mask("key: AAAABBBB x"), "key: *** x");
    }
}
