//! Event triggers: file changes (`watch`) and Claude Code hook events (`hooks`). They turn
//! events into engine fires; they never run anything themselves.

pub(crate) mod debounce;
pub(crate) mod hooks;
pub(crate) mod watch;
pub(crate) mod webhook;
