//! Isolated git worktrees for subagent runs that edit code (`worktree: true`): each run gets a
//! fresh `git worktree` of the task's repository on a branch named after the run, under the
//! server's data directory (`worktrees/<task id>/run-<run id>`), left for review; old ones are
//! removed beyond the retention count, and all of a task's when it is deleted. It never
//! touches the live checkout's files, index or HEAD (only the repository's worktree list and
//! branches), and never runs anything but `git`.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A run's worktree.
#[derive(Debug, Clone, PartialEq)]
pub struct Worktree {
    /// The worktree's top directory.
    pub path: PathBuf,
    pub branch: String,
    /// Where the run works: the task's cwd mapped into the worktree.
    pub cwd: PathBuf,
}

impl Worktree {
    /// As shown on the run.
    pub fn to_json(&self) -> Value {
        json!({"path": self.path.to_string_lossy(), "branch": self.branch})
    }
}

/// `git` with `args` in `dir`: its trimmed stdout, or what it said on failure.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e} (install git to use worktree: true)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The directory holding a task's run worktrees.
pub fn task_dir(root: &Path, task_id: &str) -> PathBuf {
    root.join(task_id)
}

/// Make a fresh worktree for run `run_id` of task `task_id` from the HEAD of the repository
/// that holds `cwd`, after removing the task's oldest ones so that at most `keep` remain with
/// the new one.
pub fn create(
    cwd: &Path,
    root: &Path,
    task_id: &str,
    run_id: i64,
    keep: usize,
) -> Result<Worktree, String> {
    let top = git(cwd, &["rev-parse", "--show-toplevel"]).map_err(|e| {
        format!(
            "worktree: true needs cwd {} to be inside a git repository: {e}",
            cwd.display()
        )
    })?;
    let top = PathBuf::from(top);
    let sub = cwd
        .canonicalize()
        .ok()
        .and_then(|c| {
            top.canonicalize()
                .ok()
                .and_then(|t| c.strip_prefix(&t).ok().map(Path::to_path_buf))
        })
        .unwrap_or_default();
    let dir = task_dir(root, task_id);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    prune(&dir, keep.saturating_sub(1));
    let path = dir.join(format!("run-{run_id}"));
    let branch = format!("claudecron/run-{run_id}");
    let path_text = path.to_string_lossy().into_owned();
    git(
        &top,
        &[
            "worktree", "add", "--quiet", "-b", &branch, &path_text, "HEAD",
        ],
    )
    .map_err(|e| format!("cannot make the run's worktree: {e}"))?;
    Ok(Worktree {
        cwd: path.join(sub),
        path,
        branch,
    })
}

/// Remove one worktree and its branch (found from the worktree itself).
pub fn remove(path: &Path) -> Result<(), String> {
    let common = git(
        path,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?;
    let branch = git(path, &["rev-parse", "--abbrev-ref", "HEAD"]).ok();
    let common = PathBuf::from(common);
    let repo = common.parent().unwrap_or(&common).to_path_buf();
    let path_text = path.to_string_lossy().into_owned();
    git(&repo, &["worktree", "remove", "--force", &path_text])?;
    if let Some(b) = branch.filter(|b| b.starts_with("claudecron/run-")) {
        git(&repo, &["branch", "-D", &b])?;
    }
    Ok(())
}

/// The run worktrees in a task's directory, oldest (lowest run id) first.
fn listed(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut found: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_prefix("run-")?.parse::<i64>().ok()?;
            Some((id, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Remove all but the newest `keep` worktrees of a task's directory; returns how many went.
pub fn prune(dir: &Path, keep: usize) -> usize {
    let found = listed(dir);
    let excess = found.len().saturating_sub(keep);
    let mut removed = 0;
    for (_, path) in found.into_iter().take(excess) {
        match remove(&path) {
            Ok(()) => removed += 1,
            Err(e) => log::warn!("cannot remove worktree {}: {e}", path.display()),
        }
    }
    removed
}

/// Remove every worktree of a deleted task; returns how many went.
pub fn remove_task(root: &Path, task_id: &str) -> usize {
    let dir = task_dir(root, task_id);
    let removed = prune(&dir, 0);
    let _ = std::fs::remove_dir(&dir);
    removed
}
