//! Executing runs: one run on its own thread (`run`), one child process group (`process`),
//! subagent runners (`subagent`, its `api` runner) and how their answers are judged (`verdict`), run notifications (`notify`). Nothing here decides when or whether to run.

pub(crate) mod notify;
pub(crate) mod process;
pub(crate) mod run;
pub(crate) mod subagent;
pub(crate) mod sweep;
pub(crate) mod verdict;
pub(crate) mod worktree;
