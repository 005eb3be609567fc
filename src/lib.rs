//! claudecron: a self-hosted MCP server that schedules and runs work on a small Linux host.
//! This crate root only declares the modules; see ARCHITECTURE.md for the map.

pub mod api_docs;
pub mod catalog;
pub mod cli;
pub mod client_config;
pub mod config;
pub mod engine;
pub mod forward;
pub mod guard;
pub mod hooks;
pub mod http;
pub mod ids;
pub mod mcp;
pub mod process;
pub mod run;
pub mod schedule;
pub mod sdnotify;
pub mod server;
pub mod sse;
pub mod store;
pub mod subagent;
pub mod task;
pub mod token;
pub mod validate;
pub mod watch;
