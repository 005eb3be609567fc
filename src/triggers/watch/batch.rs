//! What a file-watch task has seen since its last fire (the batch its run gets as context), and
//! the self-trigger guard that ignores a task's own changes while its run is active.

use super::*;

/// Changes seen for one task since its last fire.
pub(super) struct Batch {
    pub(super) paths: Vec<PathBuf>,
    pub(super) seen: HashSet<PathBuf>,
    pub(super) bytes: usize,
    pub(super) truncated: bool,
    pub(super) last_path: PathBuf,
    pub(super) last_event: FileEvent,
}

impl Batch {
    pub(super) fn new(path: &Path, event: FileEvent) -> Batch {
        let mut batch = Batch {
            paths: Vec::new(),
            seen: HashSet::new(),
            bytes: 0,
            truncated: false,
            last_path: path.to_path_buf(),
            last_event: event,
        };
        batch.push(path, event);
        batch
    }

    pub(super) fn push(&mut self, path: &Path, event: FileEvent) {
        if !self.seen.contains(path) {
            let len = path.as_os_str().len() + 1;
            if self.paths.len() < MAX_BATCH_PATHS && self.bytes + len <= MAX_PATHS_BYTES {
                self.bytes += len;
                self.seen.insert(path.to_path_buf());
                self.paths.push(path.to_path_buf());
            } else {
                self.truncated = true;
            }
        }
        self.last_path = path.to_path_buf();
        self.last_event = event;
    }

    /// The run context: environment variables for the command.
    pub(super) fn context(&self) -> RunContext {
        let paths: Vec<String> = self
            .paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let mut env = std::collections::BTreeMap::new();
        env.insert(
            "CLAUDECRON_FILE_PATH".to_string(),
            self.last_path.to_string_lossy().into_owned(),
        );
        env.insert("CLAUDECRON_FILE_PATHS".to_string(), paths.join("\n"));
        env.insert(
            "CLAUDECRON_FILE_EVENT".to_string(),
            event_name(self.last_event).to_string(),
        );
        if self.truncated {
            env.insert("CLAUDECRON_FILE_PATHS_TRUNCATED".to_string(), "1".into());
        }
        RunContext {
            env,
            ..RunContext::default()
        }
    }
}

/// Self-trigger guard state of one task.
#[derive(Default)]
pub(super) struct Guard {
    /// Runs this watcher fired that were queued or running when last looked at.
    pub(super) runs: Vec<i64>,
    pub(super) checked: Option<Instant>,
    pub(super) settle_until: Option<Instant>,
}

impl Guard {
    /// Drop runs that have ended; the settle period starts when the last one is gone.
    pub(super) fn refresh(&mut self, store: &Store, now: Instant) {
        if self.runs.is_empty() {
            return;
        }
        self.runs.retain(|id| match store.get_run(*id) {
            Ok(Some(run)) => !run.status.is_terminal(),
            Ok(None) => false,
            Err(e) => {
                log::warn!("file-watch: cannot read run {id}: {e}");
                true
            }
        });
        self.checked = Some(now);
        if self.runs.is_empty() {
            self.settle_until = Some(now + SETTLE);
        }
    }
}
