//! Measurements of the store-bound paths against the real binary, printed, never asserted
//! (timing goals belong in scripts/bench.sh): `add_task` rate and server time, `list_tasks`
//! page time (from the server's own request log) and resident memory at 1,000 and 10,000 tasks,
//! and the time from start to a healthy server with 10,000 tasks. Ignored by default; run with
//!
//! ```text
//! cargo test --release --test store_perf -- --ignored --nocapture
//! ```
//!
//! `CLAUDECRON_PERF_TASKS` sets the largest task count (default 10000).

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The server-side times (ms) of the `POST /mcp` requests logged after `mark` bytes of stderr.
fn server_ms(server: &Server, mark: usize) -> Vec<f64> {
    let log = server.stderr();
    log[mark.min(log.len())..]
        .lines()
        .filter_map(|l| l.split("POST /mcp -> 200 in ").nth(1))
        .filter_map(|t| t.trim_end_matches(" ms").parse().ok())
        .collect()
}

fn pct(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((p / 100.0) * (v.len().max(1) - 1) as f64).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn rss_kib(server: &Server, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Task `i` of a mixed set: cron (60%, many distinct expressions), interval, manual, hook.
fn task_args(i: usize) -> Value {
    let base = json!({"name": format!("task-{i:05}"), "type": "bash", "command": "true",
                      "timezone": "Europe/Moscow"});
    let extra = match i % 10 {
        0..=5 => json!({"schedule": format!("{} {} * * *", i % 60, (i / 60) % 24)}),
        6 | 7 => json!({"trigger": {"type": "interval", "every": format!("{}m", 5 + i % 50)}}),
        8 => json!({"trigger": {"type": "manual"}}),
        _ => json!({"trigger": {"type": "hook", "event": "PostToolUse", "matcher": "Edit"}}),
    };
    over(base, extra)
}

fn list_pages(server: &Server, mcp: &Mcp, tasks: usize) {
    let before = (rss_kib(server, "VmRSS"), rss_kib(server, "VmHWM"));
    let mark = server.stderr().len();
    let mut page = Value::Null;
    for _ in 0..30 {
        page = mcp.ok("claudecron_list_tasks", json!({"limit": 50}));
    }
    let times = server_ms(server, mark);
    println!(
        "  list_tasks first page at {tasks}: server p50 {:.1} ms, p99 {:.1} ms ({} rows of {}); \
         RSS {} -> {} KiB, peak {} -> {} KiB",
        pct(&times, 50.0),
        pct(&times, 99.0),
        page["count"],
        page["total"],
        before.0,
        rss_kib(server, "VmRSS"),
        before.1,
        rss_kib(server, "VmHWM")
    );
    let mark = server.stderr().len();
    let started = Instant::now();
    let mut args = json!({"limit": 50});
    let mut pages = 0;
    loop {
        let page = mcp.ok("claudecron_list_tasks", args.clone());
        pages += 1;
        match page.get("next_cursor") {
            Some(c) => args["cursor"] = c.clone(),
            None => break,
        }
    }
    let times = server_ms(server, mark);
    println!(
        "  every page ({pages}) in {:.2} s: server p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        started.elapsed().as_secs_f64(),
        pct(&times, 50.0),
        pct(&times, 99.0),
        pct(&times, 100.0)
    );
    for filter in [
        json!({"status": "disabled"}),
        json!({"trigger": "hook"}),
        json!({"status": "enabled", "trigger": "cron"}),
        json!({"search": "-0999"}),
    ] {
        let mark = server.stderr().len();
        for _ in 0..10 {
            mcp.ok(
                "claudecron_list_tasks",
                over(filter.clone(), json!({"limit": 50})),
            );
        }
        println!(
            "  {filter}: server p50 {:.1} ms",
            pct(&server_ms(server, mark), 50.0)
        );
    }
}

#[test]
#[ignore = "a measurement, not a test: run in release with --ignored --nocapture"]
fn store_bound_paths_at_1k_and_10k_tasks() {
    let largest: usize = std::env::var("CLAUDECRON_PERF_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let mut added = 0;
    for target in [largest.min(1_000), largest] {
        let mark = server.stderr().len();
        let started = Instant::now();
        for i in added..target {
            mcp.add(task_args(i));
        }
        let took = started.elapsed().as_secs_f64();
        let times = server_ms(&server, mark);
        println!(
            "add_task {added}..{target}: {:.0}/s on one client (a connection per request); \
             server mean {:.2} ms, p50 {:.1} ms, p99 {:.1} ms",
            (target - added) as f64 / took,
            times.iter().sum::<f64>() / times.len().max(1) as f64,
            pct(&times, 50.0),
            pct(&times, 99.0)
        );
        added = target;
        list_pages(&server, &mcp, target);
    }
    drop(mcp);
    let (_, _, dir) = server.terminate(Duration::from_secs(30));
    let started = Instant::now();
    let server = Server::start_in(Options::default(), dir);
    println!(
        "start with {added} tasks to a healthy /health: {:.0} ms; RSS {} KiB",
        started.elapsed().as_secs_f64() * 1e3,
        rss_kib(&server, "VmRSS")
    );
}
