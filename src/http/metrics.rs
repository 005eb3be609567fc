//! `GET /metrics`: the Prometheus text exposition of the process's `metrics` registry plus the
//! gauges read when scraped (running runs, sessions, each task's last success and enabled state,
//! build info, start time), and the fixed route names HTTP requests are counted under. It
//! decides no access (see `guard::metrics_access`) and never labels a series with a run id or a
//! raw path.

use crate::http::Reply;
use crate::metrics::{Exposition, CONTENT_TYPE};
use crate::tasks::catalog::Catalog;

/// What the server knows at scrape time, besides the registry.
pub struct Gauges {
    pub running_runs: usize,
    pub mcp_sessions: usize,
    pub status_sessions: usize,
    /// Unix time the process started, in seconds.
    pub start_time: f64,
    pub scheduler_up: bool,
}

/// The route name a request is counted under: one of a fixed set, never the raw path (whose
/// values an outsider chooses).
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/" => "/",
        "/health" => "/health",
        "/mcp" => "/mcp",
        "/hooks" => "/hooks",
        "/metrics" => "/metrics",
        "/calendar.ics" => "/calendar.ics",
        "/status" | "/status/" => "/status",
        "/status/login" => "/status/login",
        "/status/logout" => "/status/logout",
        "/status/style.css" => "/status/style.css",
        p if p.starts_with("/status/run/") => "/status/run",
        // Never the token: it is the path's secret.
        p if p.starts_with("/trigger/") => "/trigger",
        "/authorize" => "/authorize",
        "/token" => "/token",
        "/register" => "/register",
        p if p.starts_with("/.well-known/oauth-") => "/.well-known/oauth",
        _ => "other",
    }
}

/// The whole exposition. Task gauges are left out (and the scrape still answers) when the
/// database cannot be read; `claudecron_database_up` says so.
pub fn render(catalog: Option<&Catalog>, gauges: &Gauges) -> Reply {
    let mut out = Exposition::default();
    out.family(
        "claudecron_build_info",
        "gauge",
        "Always 1; the version of the running server is a label.",
    );
    out.sample(
        "claudecron_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    out.family(
        "claudecron_start_time_seconds",
        "gauge",
        "Unix time the server process started.",
    );
    out.sample("claudecron_start_time_seconds", &[], gauges.start_time);
    out.family(
        "claudecron_scheduler_up",
        "gauge",
        "1 while the engine thread runs.",
    );
    out.sample(
        "claudecron_scheduler_up",
        &[],
        f64::from(u8::from(gauges.scheduler_up)),
    );
    out.family(
        "claudecron_running_runs",
        "gauge",
        "Runs whose process is running now.",
    );
    out.sample("claudecron_running_runs", &[], gauges.running_runs as f64);
    out.family(
        "claudecron_sessions",
        "gauge",
        "Open sessions, by kind (mcp: MCP sessions; status: status page logins).",
    );
    out.sample(
        "claudecron_sessions",
        &[("kind", "mcp")],
        gauges.mcp_sessions as f64,
    );
    out.sample(
        "claudecron_sessions",
        &[("kind", "status")],
        gauges.status_sessions as f64,
    );
    crate::metrics::global().render(&mut out);

    let tasks = catalog.map(|c| c.task_success_times());
    out.family(
        "claudecron_database_up",
        "gauge",
        "1 when the task gauges below could be read from the database.",
    );
    let ok = matches!(tasks, Some(Ok(_)));
    out.sample("claudecron_database_up", &[], f64::from(u8::from(ok)));
    if let Some(Ok(tasks)) = tasks {
        out.family(
            "claudecron_task_enabled",
            "gauge",
            "1 when the task is enabled, 0 when it is paused (disabled); one series per task.",
        );
        for t in &tasks {
            out.sample(
                "claudecron_task_enabled",
                &[("task", &t.name)],
                f64::from(u8::from(t.enabled)),
            );
        }
        out.family(
            "claudecron_task_last_success_timestamp_seconds",
            "gauge",
            "Unix time the task's newest successful run (still in the history) finished; tasks that never succeeded have no series.",
        );
        for t in &tasks {
            if let Some(at) = t.last_success {
                out.sample(
                    "claudecron_task_last_success_timestamp_seconds",
                    &[("task", &t.name)],
                    at.timestamp_millis() as f64 / 1000.0,
                );
            }
        }
    }
    Reply {
        status: 200,
        headers: vec![
            ("Content-Type".into(), CONTENT_TYPE.into()),
            ("Cache-Control".into(), "no-store".into()),
        ],
        body: out.finish().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn route_labels_are_a_fixed_set_and_never_carry_a_secret_or_an_id() {
        assert_eq!(route_label("/trigger/0123456789abcdef"), "/trigger");
        assert_eq!(route_label("/status/run/42"), "/status/run");
        assert_eq!(route_label("/mcp"), "/mcp");
        assert_eq!(route_label("/wp-login.php"), "other");
        assert_eq!(
            route_label("/.well-known/oauth-protected-resource/cron/mcp"),
            "/.well-known/oauth"
        );
    }
}
