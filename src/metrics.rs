//! The in-memory metrics registry: the counters and histograms that the engine, the run threads
//! and the HTTP server add to as things happen (runs ended by task and status, run durations,
//! fire lateness, missed fires, subagent cost and tokens, HTTP requests by route and status, the
//! queue length), and the Prometheus text exposition helpers (label escaping, families). It is
//! the one owner of these values; it never reads the clock, the store or the network, and label
//! cardinality stays bounded (task names up to `MAX_TASKS`, never run ids).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Distinct task names that get series of their own; later ones share the label `(other)`.
pub const MAX_TASKS: usize = 1000;
/// The label given to tasks beyond `MAX_TASKS`.
pub const OTHER_TASK: &str = "(other)";

/// Upper bounds (seconds) of the run duration histogram.
pub const DURATION_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];
/// Upper bounds (seconds) of the fire lateness histogram.
pub const LATENESS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A cumulative histogram with fixed bounds.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Observations `<= bounds[i]` (not cumulative here; summed when written).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        let value = if value.is_finite() {
            value.max(0.0)
        } else {
            0.0
        };
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

#[derive(Default)]
struct Inner {
    /// Task names seen so far (for the cardinality bound).
    tasks: BTreeSet<String>,
    runs: BTreeMap<(String, String), u64>,
    durations: BTreeMap<String, Histogram>,
    lateness: Option<Histogram>,
    missed: BTreeMap<String, u64>,
    cost_usd: BTreeMap<String, f64>,
    tokens: BTreeMap<(String, &'static str), u64>,
    http: BTreeMap<(&'static str, u16), u64>,
}

impl Inner {
    /// The label a task name gets: itself, or `(other)` once `MAX_TASKS` names were seen.
    fn task_label(&mut self, name: &str) -> String {
        if self.tasks.contains(name) {
            return name.to_string();
        }
        if self.tasks.len() < MAX_TASKS {
            self.tasks.insert(name.to_string());
            return name.to_string();
        }
        OTHER_TASK.to_string()
    }
}

/// The registry. One lives for the process (`global()`); tests may make their own.
pub struct Registry {
    inner: Mutex<Option<Inner>>,
    queue: AtomicUsize,
}

static GLOBAL: Registry = Registry::new();

/// The process's registry.
pub fn global() -> &'static Registry {
    &GLOBAL
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    pub const fn new() -> Registry {
        Registry {
            inner: Mutex::new(None),
            queue: AtomicUsize::new(0),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(guard.get_or_insert_with(Inner::default))
    }

    /// A run of `task` ended with `status` (any status, `skipped` included); `duration` in
    /// seconds when it ran.
    pub fn run_ended(&self, task: &str, status: &str, duration: Option<f64>) {
        self.with(|m| {
            let task = m.task_label(task);
            *m.runs
                .entry((task.clone(), status.to_string()))
                .or_insert(0) += 1;
            if let Some(secs) = duration {
                m.durations
                    .entry(task)
                    .or_insert_with(|| Histogram::new(DURATION_BUCKETS))
                    .observe(secs);
            }
        })
    }

    /// A fire started `secs` after the time it was due.
    pub fn fire_late(&self, secs: f64) {
        self.with(|m| {
            m.lateness
                .get_or_insert_with(|| Histogram::new(LATENESS_BUCKETS))
                .observe(secs)
        })
    }

    /// `n` fire times of `task` were missed (not run at their time).
    pub fn fires_missed(&self, task: &str, n: u64) {
        self.with(|m| {
            let task = m.task_label(task);
            *m.missed.entry(task).or_insert(0) += n;
        })
    }

    /// A subagent run of `task` reported its cost and tokens.
    pub fn subagent_usage(&self, task: &str, cost_usd: Option<f64>, input: u64, output: u64) {
        self.with(|m| {
            let task = m.task_label(task);
            if let Some(cost) = cost_usd.filter(|c| c.is_finite() && *c >= 0.0) {
                *m.cost_usd.entry(task.clone()).or_insert(0.0) += cost;
            }
            *m.tokens.entry((task.clone(), "input")).or_insert(0) += input;
            *m.tokens.entry((task, "output")).or_insert(0) += output;
        })
    }

    /// An HTTP request was answered. `route` is one of a fixed set of names, never a raw path.
    pub fn http_request(&self, route: &'static str, status: u16) {
        self.with(|m| *m.http.entry((route, status)).or_insert(0) += 1)
    }

    /// Runs waiting to start (set by the engine thread whenever its queue changes).
    pub fn set_queue_length(&self, n: usize) {
        self.queue.store(n, Ordering::Relaxed);
    }

    /// Write every family this registry owns in the text exposition format.
    pub fn render(&self, out: &mut Exposition) {
        let queue = self.queue.load(Ordering::Relaxed);
        self.with(|m| {
            out.family(
                "claudecron_runs_total",
                "counter",
                "Runs ended, by task and final status (skipped fires included).",
            );
            for ((task, status), n) in &m.runs {
                out.sample(
                    "claudecron_runs_total",
                    &[("task", task), ("status", status)],
                    *n as f64,
                );
            }
            out.family(
                "claudecron_run_duration_seconds",
                "histogram",
                "How long runs that started took, by task.",
            );
            for (task, h) in &m.durations {
                out.histogram("claudecron_run_duration_seconds", &[("task", task)], h);
            }
            out.family(
                "claudecron_fire_lateness_seconds",
                "histogram",
                "Time from a fire's due time to its run's start (scheduled and retry fires).",
            );
            let empty = Histogram::new(LATENESS_BUCKETS);
            out.histogram(
                "claudecron_fire_lateness_seconds",
                &[],
                m.lateness.as_ref().unwrap_or(&empty),
            );
            out.family(
                "claudecron_missed_fires_total",
                "counter",
                "Fire times not run at their time (server down, clock jump, too late), by task.",
            );
            for (task, n) in &m.missed {
                out.sample(
                    "claudecron_missed_fires_total",
                    &[("task", task)],
                    *n as f64,
                );
            }
            out.family(
                "claudecron_subagent_cost_usd_total",
                "counter",
                "Cost reported by subagent runs, in US dollars, by task.",
            );
            for (task, c) in &m.cost_usd {
                out.sample("claudecron_subagent_cost_usd_total", &[("task", task)], *c);
            }
            out.family(
                "claudecron_subagent_tokens_total",
                "counter",
                "Tokens used by subagent runs, by task and kind (input, output).",
            );
            for ((task, kind), n) in &m.tokens {
                out.sample(
                    "claudecron_subagent_tokens_total",
                    &[("task", task), ("kind", kind)],
                    *n as f64,
                );
            }
            out.family(
                "claudecron_http_requests_total",
                "counter",
                "HTTP requests answered, by route and status code.",
            );
            for ((route, status), n) in &m.http {
                out.sample(
                    "claudecron_http_requests_total",
                    &[("route", route), ("code", &status.to_string())],
                    *n as f64,
                );
            }
        });
        out.family(
            "claudecron_queue_length",
            "gauge",
            "Runs waiting to start (queued behind max_concurrent_tasks or their task's overlap policy).",
        );
        out.sample("claudecron_queue_length", &[], queue as f64);
    }
}

/// A Prometheus text exposition (format 0.0.4) being written.
#[derive(Default)]
pub struct Exposition {
    text: String,
}

/// The Content-Type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value escaped for the exposition format: backslash, double quote and line feed.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: Prometheus spells infinities and NaN its own way.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

impl Exposition {
    /// `# HELP` and `# TYPE` of a family (write each family once, before its samples).
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (bound, n) in h.bounds.iter().zip(&h.counts) {
            cumulative += n;
            let le = number(*bound);
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, cumulative as f64);
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        self.sample(&bucket, &l, h.count as f64);
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_escaping() {
        let r = Registry::new();
        r.run_ended("a\"b\\c\nd", "success", Some(0.3));
        r.run_ended("a\"b\\c\nd", "success", Some(7.0));
        r.run_ended("x", "skipped", None);
        r.fire_late(0.02);
        r.fires_missed("x", 3);
        r.http_request("/mcp", 200);
        r.set_queue_length(4);
        let mut e = Exposition::default();
        r.render(&mut e);
        let text = e.finish();
        assert!(
            text.contains("claudecron_runs_total{task=\"a\\\"b\\\\c\\nd\",status=\"success\"} 2\n")
        );
        assert!(text.contains("claudecron_runs_total{task=\"x\",status=\"skipped\"} 1\n"));
        assert!(text.contains(
            "claudecron_run_duration_seconds_bucket{task=\"a\\\"b\\\\c\\nd\",le=\"0.5\"} 1\n"
        ));
        assert!(text.contains(
            "claudecron_run_duration_seconds_bucket{task=\"a\\\"b\\\\c\\nd\",le=\"10\"} 2\n"
        ));
        assert!(text.contains("claudecron_fire_lateness_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("claudecron_fire_lateness_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(text.contains("claudecron_fire_lateness_seconds_count 1\n"));
        assert!(text.contains("claudecron_missed_fires_total{task=\"x\"} 3\n"));
        assert!(text.contains("claudecron_http_requests_total{route=\"/mcp\",code=\"200\"} 1\n"));
        assert!(text.contains("claudecron_queue_length 4\n"));
    }

    #[test]
    fn task_labels_are_bounded() {
        let r = Registry::new();
        for i in 0..MAX_TASKS + 5 {
            r.run_ended(&format!("t{i}"), "success", None);
        }
        let mut e = Exposition::default();
        r.render(&mut e);
        let text = e.finish();
        assert!(text.contains("claudecron_runs_total{task=\"(other)\",status=\"success\"} 5\n"));
        let series = text
            .lines()
            .filter(|l| l.starts_with("claudecron_runs_total{"))
            .count();
        assert_eq!(series, MAX_TASKS + 1);
    }
}
