//! Tasks: the model (`model`), raw arguments → a checked spec (`validate`), cron schedules and
//! fire times (`schedule`), and the operations tools and CLI share (`catalog`).

pub mod approval;
pub(crate) mod catalog;
pub mod model;
pub mod runs;
pub mod schedule;
pub mod validate;
