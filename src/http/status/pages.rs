//! The HTML of the status pages: the overview (tasks with next and last run, state, the last 50
//! runs), one run with its output, the login form, and the stylesheet. Every value from a task,
//! a run or the caller is escaped here (`esc`); no page carries a script or an inline style.
//! Links are relative (`root` leads from the page back to the server's root), so the pages work
//! behind a reverse proxy's path prefix (`/cron/status`) as well as directly.

use crate::tasks::catalog::{Catalog, ListQuery, OpError, MAX_PAGE};
use serde_json::Value;
use std::fmt::Write as _;

/// The stylesheet (served from `/status/style.css`, so the CSP needs no inline style).
pub const STYLE: &str = "\
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;padding:0 .8rem 2rem;color:#1d1d1f;background:#fafafa;line-height:1.4}
header{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem;padding:.6rem 0;border-bottom:1px solid #ddd;margin-bottom:.8rem}
h1{font-size:1.25rem;margin:0}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem;background:#fff}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f0f0f0;font-weight:600}
td.name{overflow-wrap:anywhere;min-width:6.5rem;max-width:16rem}
@media (max-width:600px){.wide{display:none}th,td{padding:.3rem .35rem}}
.s{font-weight:600}.s-success{color:#137333}.s-failed,.s-timeout,.s-interrupted{color:#b3261e}.s-running,.s-queued{color:#0b57d0}.s-skipped,.s-cancelled{color:#777}
.off{color:#b06000;font-weight:600}
pre{white-space:pre-wrap;word-break:break-word;background:#111;color:#eee;padding:.7rem;border-radius:4px;font-size:.85rem;max-width:100%;overflow-x:auto}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem}dt{font-weight:600}dd{margin:0;word-break:break-word}
form.login{max-width:24rem;display:flex;flex-direction:column;gap:.5rem}
input[type=password]{font-size:1rem;padding:.5rem}
button{font-size:1rem;padding:.45rem .9rem;cursor:pointer}
.err{color:#b3261e;font-weight:600}.muted{color:#666;font-size:.85rem}
a{color:#0b57d0}
";

/// Text made safe for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as escaped text ("" for null).
fn val(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => esc(s),
        other => esc(&other.to_string()),
    }
}

fn page(title: &str, nav: &str, body: &str, root: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
\
<title>{} · claudecron</title><link rel=\"stylesheet\" href=\"{root}status/style.css\"></head>\
<body><header><h1>{}</h1>{nav}</header>\n{body}\n</body></html>\n",
        esc(title),
        esc(title)
    )
}

fn logout_form(auth: bool, root: &str) -> String {
    if auth {
        format!("<form method=\"post\" action=\"{root}status/logout\"><button type=\"submit\">Log out</button></form>")
    } else {
        String::new()
    }
}

/// A status word with its colour class (statuses are a fixed set; escaped all the same).
fn status(v: &Value) -> String {
    let s = val(v);
    format!("<span class=\"s s-{s}\">{s}</span>")
}

/// A time pair `{"local": ..., "utc": ...}` or a plain time string.
fn time(v: &Value) -> String {
    match v.get("local") {
        Some(local) => val(local),
        None => val(v),
    }
}

fn run_link(id: &Value, root: &str) -> String {
    match id.as_i64() {
        Some(n) => format!("<a href=\"{root}status/run/{n}\">#{n}</a>"),
        None => String::new(),
    }
}

/// A short message page (errors, refusals).
pub fn message(title: &str, text: &str, root: &str) -> String {
    page(
        title,
        "",
        &format!(
            "<p>{}</p><p><a href=\"{root}status\">Back to the status page</a></p>",
            esc(text)
        ),
        root,
    )
}

/// The login form; `error` is shown above it.
pub fn login(error: Option<&str>, root: &str) -> String {
    let error = error
        .map(|e| format!("<p class=\"err\">{}</p>", esc(e)))
        .unwrap_or_default();
    page(
        "claudecron status",
        "",
        &format!(
            "{error}<form class=\"login\" method=\"post\" action=\"{root}status/login\">\
<label for=\"token\">Bearer token</label>\
<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Log in</button></form>\
<p class=\"muted\">The token is the one Claude uses (<code>claudecron token</code> prints it). \
It is checked once; the browser keeps only a random session cookie.</p>"
        ),
        root,
    )
}

/// The overview: every task (up to `MAX_PAGE`) and the last 50 runs.
pub fn overview(catalog: &Catalog, auth: bool, root: &str) -> Result<String, String> {
    let now = chrono::Utc::now();
    let list = catalog
        .list(
            &ListQuery {
                limit: MAX_PAGE,
                ..ListQuery::default()
            },
            now,
        )
        .map_err(|e| e.to_string())?;
    let runs = catalog.history(None, None, 50).map_err(|e| e.to_string())?;
    let mut body = String::new();
    let tasks = list["tasks"].as_array().cloned().unwrap_or_default();
    let total = list["total"].as_i64().unwrap_or(0);
    let paused = tasks.iter().filter(|t| t["enabled"] == false).count();
    if let Some(p) = catalog.pause_view() {
        let _ = write!(
            body,
            "<p class=\"off\">Everything is paused (since {} UTC): {}. Nothing fires and manual runs are refused until <code>claudecron resume-all</code>.</p>",
            val(&p["since"]).replace('T', " "),
            val(&p["reason"])
        );
    }
    let _ = write!(
        body,
        "<p class=\"muted\">{} tasks, {} paused · as of {} UTC</p><h2>Tasks</h2>",
        total,
        paused,
        esc(&crate::util::rfc3339(now))
    );
    if tasks.is_empty() {
        body.push_str("<p>No tasks yet.</p>");
    } else {
        body.push_str("<div class=\"scroll\"><table><thead><tr><th>Task</th><th class=\"wide\">Trigger</th><th>State</th><th>Next run</th><th>Last run</th></tr></thead><tbody>");
        for t in &tasks {
            let state = if t["enabled"] == true {
                "enabled".to_string()
            } else {
                "<span class=\"off\">paused</span>".to_string()
            };
            let last = &t["last_run"];
            let last = if last.is_null() {
                "never".to_string()
            } else {
                format!(
                    "{} {} {}",
                    status(&last["status"]),
                    run_link(&last["id"], root),
                    val(&last["finished_at"]).replace('T', " ")
                )
            };
            let _ = write!(
                body,
                "<tr><td class=\"name\">{}</td><td class=\"wide\">{}</td><td>{state}</td><td>{}</td><td>{last}</td></tr>",
                val(&t["name"]),
                val(&t["trigger_summary"]),
                time(&t["next_run"]).replace('T', " "),
            );
        }
        body.push_str("</tbody></table></div>");
        if (tasks.len() as i64) < total {
            let _ = write!(
                body,
                "<p class=\"muted\">The first {} tasks by name are shown.</p>",
                tasks.len()
            );
        }
    }
    body.push_str("<h2>Last 50 runs</h2>");
    let runs = runs["runs"].as_array().cloned().unwrap_or_default();
    if runs.is_empty() {
        body.push_str("<p>No runs yet.</p>");
    } else {
        body.push_str("<div class=\"scroll\"><table><thead><tr><th>Run</th><th>Task</th><th>Status</th><th class=\"wide\">Trigger</th><th>Started</th><th>Took</th></tr></thead><tbody>");
        for r in &runs {
            let took = r["duration_ms"]
                .as_i64()
                .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default();
            let started = if r["started_at"].is_null() {
                &r["queued_at"]
            } else {
                &r["started_at"]
            };
            let _ = write!(
                body,
                "<tr><td>{}</td><td class=\"name\">{}</td><td>{}</td><td class=\"wide\">{}</td><td>{}</td><td>{took}</td></tr>",
                run_link(&r["id"], root),
                val(&r["task_name"]),
                status(&r["status"]),
                val(&r["trigger"]),
                val(started).replace('T', " "),
            );
        }
        body.push_str("</tbody></table></div>");
    }
    Ok(page(
        "claudecron status",
        &logout_form(auth, root),
        &body,
        root,
    ))
}

/// One run with its whole stored output.
pub fn run(catalog: &Catalog, id: i64, root: &str) -> Result<String, (u16, String)> {
    let answer = catalog.run(id, None).map_err(|e| match e {
        OpError::NotFound(_) => (404, format!("There is no run #{id}.")),
        other => (500, other.to_string()),
    })?;
    let r = &answer["run"];
    let mut body = format!("<p><a href=\"{root}status\">← all tasks</a></p><dl>");
    let rows = [
        ("Task", val(&r["task_name"])),
        ("Status", status(&r["status"])),
        ("Trigger", val(&r["trigger"])),
        ("Attempt", val(&r["attempt"])),
        ("Scheduled for", val(&r["scheduled_for"])),
        ("Started", val(&r["started_at"])),
        ("Finished", val(&r["finished_at"])),
        ("Duration (ms)", val(&r["duration_ms"])),
        ("Exit code", val(&r["exit_code"])),
        ("Error", val(&r["error"])),
        ("Model", val(&r["model"])),
        ("Cost (USD)", val(&r["cost_usd"])),
    ];
    for (k, v) in rows {
        if !v.is_empty() {
            let _ = write!(body, "<dt>{k}</dt><dd>{v}</dd>");
        }
    }
    body.push_str("</dl><h2>Output</h2>");
    let output = r["output"].as_str().unwrap_or("");
    if output.is_empty() {
        body.push_str("<p class=\"muted\">No output.</p>");
    } else {
        let _ = write!(body, "<pre id=\"output\">{}</pre>", esc(output));
        if r["output_truncated"] == true {
            body.push_str("<p class=\"muted\">The output was cut to output_max_bytes (head and tail kept).</p>");
        }
    }
    Ok(page(&format!("Run #{id}"), "", &body, root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let p = message("<b>", "<i>", "");
        assert!(!p.contains("<b>") && !p.contains("<i>"));
        assert!(p.contains("name=\"viewport\""));
    }
}
