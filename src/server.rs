//! Server start-up (placeholder until the HTTP layer lands).
use crate::config::Config;
pub fn serve(_config: Config) -> Result<(), String> {
    Err("the server is not built yet".into())
}
