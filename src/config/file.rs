//! Which configuration file is read: `--config`, `$CLAUDECRON_CONFIG`, `~/.claudecron/config.toml`
//! or `/etc/claudecron/config.toml`. It only looks for the file; reading and checking it is
//! `config`'s.

use super::{expand_tilde, Sources};
use std::path::PathBuf;

/// Which file to read: `--config`, else `$CLAUDECRON_CONFIG`, else `~/.claudecron/config.toml`,
/// else `/etc/claudecron/config.toml`; an explicitly named file must exist, the defaults may not.
pub(super) fn choose_file(sources: &Sources) -> Result<Option<PathBuf>, String> {
    if let Some(path) = &sources.config_file {
        let path = expand_tilde(&path.to_string_lossy(), sources.home.as_deref());
        if !path.is_file() {
            return Err(format!(
                "config file {} (from --config) does not exist or is not a file",
                path.display()
            ));
        }
        return Ok(Some(path));
    }
    if let Some(value) = sources
        .env
        .get("CLAUDECRON_CONFIG")
        .filter(|v| !v.is_empty())
    {
        let path = expand_tilde(value, sources.home.as_deref());
        if !path.is_file() {
            return Err(format!(
                "config file {} (from CLAUDECRON_CONFIG) does not exist or is not a file",
                path.display()
            ));
        }
        return Ok(Some(path));
    }
    let mut candidates = Vec::new();
    if let Some(home) = &sources.home {
        candidates.push(home.join(".claudecron/config.toml"));
    }
    candidates.push(PathBuf::from("/etc/claudecron/config.toml"));
    Ok(candidates.into_iter().find(|p| p.is_file()))
}
