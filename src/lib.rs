//! claudecron: a self-hosted MCP server that schedules and runs work on a small Linux host.
//! This crate root only declares the modules; see ARCHITECTURE.md for the map and the layers.

pub mod cli;
pub mod config;
pub(crate) mod engine;
pub(crate) mod exec;
pub(crate) mod http;
pub(crate) mod ids;
pub(crate) mod logger;
pub mod mcp;
pub(crate) mod metrics;
pub(crate) mod oauth;
pub(crate) mod sdnotify;
pub(crate) mod secrets;
pub(crate) mod store;
pub(crate) mod sys;
pub mod tasks;
pub(crate) mod token;
pub(crate) mod triggers;
pub mod util;
