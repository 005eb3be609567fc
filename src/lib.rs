//! claudecron: a self-hosted MCP server that schedules and runs work on a small Linux host.
//! This crate root only declares the modules; see ARCHITECTURE.md for the map.

pub mod schedule;
