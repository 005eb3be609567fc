//! `/metrics` and `/status` against the real binary: who may read them (no token → 401 or a
//! redirect to the login form, a wrong or forged cookie refused, a cross-site or Origin-less
//! login form refused (Origin and Sec-Fetch-Site), relative links and redirects, the three `metrics_auth` modes), what the login cookie is (a random
//! session id, `HttpOnly; Secure; SameSite=Strict`, never the token; gone after logout), that the
//! pages escape a task named `<script>…`, and that the counters move with real runs (runs by
//! task and status, durations, fire lateness, HTTP requests, escaped label values).
//! A real Prometheus and a real browser are driven by `scripts/ops_web_test.sh`.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const XSS: &str = "<script>alert(1)</script>";

fn metrics(server: &Server, bearer: Option<&str>) -> Response {
    let mut req = Req::get("/metrics");
    if let Some(t) = bearer {
        req = req.bearer(t);
    }
    req.send(server.port)
}

/// The value of the sample line `series` (exactly, labels included) in an exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A form POST to `/status/login` from our own origin (unless `origin` says otherwise).
fn login(server: &Server, token: &str, origin: Option<&str>) -> Response {
    let own = format!("http://{}", server.host_header());
    let mut req = Req::post("/status/login")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={}", token.replace('+', "%2B")));
    match origin {
        Some("") => {}
        Some(o) => req = req.header("Origin", o),
        None => req = req.header("Origin", &own),
    }
    req.send(server.port)
}

fn session_cookie(resp: &Response) -> String {
    let set = resp
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie: {}", resp.describe()))
        .to_string();
    set.split(';').next().unwrap_or("").trim().to_string()
}

#[test]
fn status_page_needs_a_login_and_its_cookie_is_not_the_token() {
    let server = Server::start_default();
    let token = server.token().to_string();
    let mcp = Mcp::new(&server);
    mcp.add_task(
        json!({"name": XSS, "type": "bash", "command": "echo '<b>bold</b> & done'",
        "trigger": {"type": "manual"}}),
    );
    let run = mcp.run_task(XSS, 30);
    let run = mcp.wait_finished(id_of(&run), Duration::from_secs(60));
    assert_eq!(run["status"], "success", "{run}");
    let run_id = id_of(&run);

    // No cookie, a forged one: redirected to the login form.
    for cookie in [
        None,
        Some("claudecron_status=0123456789abcdef"),
        Some(&*format!("claudecron_status={token}")),
    ] {
        let mut req = Req::get("/status");
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        let resp = req.send(server.port);
        assert_eq!(resp.status, 303, "{}", resp.describe());
        // Relative, so that it also works under a proxy's prefix (/cron/status).
        assert_eq!(resp.header("location"), Some("status/login"));
    }
    let resp = Req::get(&format!("/status/run/{run_id}")).send(server.port);
    assert_eq!(resp.status, 303, "a run's page needs the login too");
    assert_eq!(resp.header("location"), Some("../../status/login"));

    let form = Req::get("/status/login").send(server.port);
    assert_eq!(form.status, 200);
    let csp = form.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(form.text().contains("name=\"token\""));

    // Login refusals: no Origin, another site, another local port, a wrong token.
    let resp = login(&server, &token, Some(""));
    assert_eq!(resp.status, 403, "no Origin: {}", resp.describe());
    let resp = login(&server, &token, Some("https://evil.example"));
    assert_eq!(resp.status, 403, "cross-site: {}", resp.describe());
    let resp = login(&server, &token, Some("http://127.0.0.1:1"));
    assert_eq!(
        resp.status,
        403,
        "another local origin: {}",
        resp.describe()
    );
    let resp = Req::post("/status/login")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Origin", &format!("http://{}", server.host_header()))
        .header("Sec-Fetch-Site", "cross-site")
        .body(format!("token={token}"))
        .send(server.port);
    assert_eq!(
        resp.status,
        403,
        "Sec-Fetch-Site: cross-site: {}",
        resp.describe()
    );
    let resp = login(&server, "not-the-token-at-all", None);
    assert_eq!(resp.status, 401, "{}", resp.describe());
    assert!(resp.header("set-cookie").is_none());
    assert!(resp.text().contains("not valid"));

    let resp = login(&server, &token, None);
    assert_eq!(resp.status, 303, "{}", resp.describe());
    assert_eq!(resp.header("location"), Some("../status"));
    let set = resp.header("set-cookie").unwrap_or("").to_string();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(set.contains(attr), "{attr} missing from the cookie: {set}");
    }
    let cookie = session_cookie(&resp);
    assert!(!set.contains(&token), "the cookie carries the token");
    assert!(cookie.len() > "claudecron_status=".len() + 32, "{cookie}");

    let page = Req::get("/status")
        .header("Cookie", &cookie)
        .send(server.port);
    assert_eq!(page.status, 200, "{}", page.describe());
    assert!(page.header("content-security-policy").is_some());
    let html = page.text();
    assert!(
        !html.contains(XSS),
        "the task name reached the page unescaped"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains(&format!("href=\"status/run/{run_id}\"")));
    assert!(html.contains("name=\"viewport\""));
    assert!(
        !html.contains("<script"),
        "a status page has no script at all"
    );

    let page = Req::get(&format!("/status/run/{run_id}"))
        .header("Cookie", &cookie)
        .send(server.port);
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("&lt;b&gt;bold&lt;/b&gt; &amp; done"),
        "{}",
        page.text()
    );
    let missing = Req::get("/status/run/999999")
        .header("Cookie", &cookie)
        .send(server.port);
    assert_eq!(missing.status, 404);

    // A bearer header works as well (curl, scripts).
    let page = Req::get("/status").bearer(&token).send(server.port);
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("Everything is paused"));

    // The pause of everything is on the page, its reason escaped.
    let sid = server.session();
    let paused = server
        .mcp(
            Some(&sid),
            &serde_json::json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                "params": {"name": "claudecron_pause_all", "arguments": {"reason": "disk <b>swap</b>"}}}),
        )
        .send(server.port);
    assert_eq!(paused.status, 200, "{}", paused.describe());
    let page = Req::get("/status").bearer(&token).send(server.port);
    assert!(
        page.text().contains("Everything is paused")
            && page.text().contains("disk &lt;b&gt;swap&lt;/b&gt;"),
        "{}",
        page.text()
    );

    // Logout ends that login.
    let own = format!("http://{}", server.host_header());
    let out = Req::post("/status/logout")
        .header("Cookie", &cookie)
        .header("Origin", &own)
        .send(server.port);
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap_or("").contains("Max-Age=0"));
    let page = Req::get("/status")
        .header("Cookie", &cookie)
        .send(server.port);
    assert_eq!(page.status, 303, "the cookie still worked after logout");
}

#[test]
fn metrics_auth_modes() {
    // Default: the bearer token.
    let server = Server::start_default();
    assert_eq!(metrics(&server, None).status, 401);
    assert_eq!(
        metrics(&server, Some("wrong-token-wrong-token")).status,
        401
    );
    let ok = metrics(&server, Some(server.token()));
    assert_eq!(ok.status, 200, "{}", ok.describe());
    assert!(ok
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/plain; version=0.0.4"));
    assert!(ok.text().contains("claudecron_build_info{version=\""));
    drop(server);

    // A separate metrics token: the main token does not open /metrics, nor does the metrics
    // token open /mcp.
    let scrape = new_token();
    let server = Server::start(
        Options::default()
            .env("CLAUDECRON_METRICS_AUTH", "metrics_token")
            .env("CLAUDECRON_METRICS_TOKEN", &scrape),
    );
    assert_eq!(metrics(&server, Some(server.token())).status, 401);
    assert_eq!(metrics(&server, None).status, 401);
    assert_eq!(metrics(&server, Some(&scrape)).status, 200);
    let mcp = Req::post("/mcp")
        .bearer(&scrape)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .json(&initialize_body("2025-11-25"))
        .send(server.port);
    assert_eq!(mcp.status, 401);
    assert!(
        !server.stderr().contains(&scrape),
        "the metrics token was logged"
    );
    drop(server);

    // Loopback only: no token from this host; a remote client behind the trusted proxy is refused.
    let server = Server::start(
        Options::default()
            .env("CLAUDECRON_METRICS_AUTH", "loopback")
            .env("CLAUDECRON_TRUST_PROXY", "true"),
    );
    assert_eq!(metrics(&server, None).status, 200);
    let remote = Req::get("/metrics")
        .header("X-Real-IP", "203.0.113.7")
        .send(server.port);
    assert_eq!(remote.status, 403, "{}", remote.describe());
    drop(server);

    // Without trust_proxy, a request a proxy on this host forwarded is still not local: the
    // proxy's headers say it came from elsewhere (else a public site would serve /metrics).
    let server = Server::start(Options::default().env("CLAUDECRON_METRICS_AUTH", "loopback"));
    assert_eq!(metrics(&server, None).status, 200);
    for header in ["X-Real-IP", "X-Forwarded-For", "Forwarded"] {
        let proxied = Req::get("/metrics")
            .header(header, "203.0.113.7")
            .send(server.port);
        assert_eq!(proxied.status, 403, "{header}: {}", proxied.describe());
    }
    drop(server);

    // A metrics_token mode without the token is a config error naming the key.
    let bad = Options::default().env("CLAUDECRON_METRICS_AUTH", "metrics_token");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_claudecron"))
        .arg("check")
        .env_clear()
        .env("HOME", "/nonexistent-home")
        .envs(bad.env.iter().cloned())
        .output()
        .expect("run claudecron check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("metrics_token"),
        "{err}"
    );
}

#[test]
fn counters_follow_real_runs() {
    let server = Server::start_default();
    let mcp = Mcp::new(&server);
    let quoted = "say \"hi\" \\ now";
    mcp.add_task(json!({"name": quoted, "type": "bash", "command": "echo hi", "trigger": {"type": "manual"}}));
    mcp.add_task(json!({"name": "fails", "type": "bash", "command": "exit 3", "trigger": {"type": "manual"}}));
    mcp.add_task(json!({"name": "tick", "type": "bash", "command": "true",
        "trigger": {"type": "interval", "every": "1s"}}));
    for task in [quoted, quoted, "fails"] {
        let run = mcp.run_task(task, 30);
        mcp.wait_finished(id_of(&run), Duration::from_secs(60));
    }
    let label = r#"say \"hi\" \\ now"#;
    let text = wait_until(
        "the interval task's fires to be counted",
        Duration::from_secs(60),
        || {
            let text = metrics(&server, Some(server.token())).text();
            let late = sample(&text, "claudecron_fire_lateness_seconds_count")?;
            let ticks = sample(
                &text,
                r#"claudecron_runs_total{task="tick",status="success"}"#,
            )?;
            (late >= 2.0 && ticks >= 2.0).then_some(text)
        },
    );
    assert_eq!(
        sample(
            &text,
            &format!("claudecron_runs_total{{task=\"{label}\",status=\"success\"}}")
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"claudecron_runs_total{task="fails",status="failed"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("claudecron_run_duration_seconds_count{{task=\"{label}\"}}")
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("claudecron_run_duration_seconds_bucket{{task=\"{label}\",le=\"+Inf\"}}")
        ),
        Some(2.0)
    );
    assert!(
        sample(
            &text,
            r#"claudecron_http_requests_total{route="/mcp",code="200"}"#
        )
        .unwrap_or(0.0)
            >= 5.0
    );
    assert!(
        sample(
            &text,
            &format!("claudecron_task_last_success_timestamp_seconds{{task=\"{label}\"}}")
        )
        .unwrap_or(0.0)
            > 1.7e9
    );
    assert!(sample(
        &text,
        r#"claudecron_task_last_success_timestamp_seconds{task="fails"}"#
    )
    .is_none());
    assert_eq!(
        sample(&text, r#"claudecron_task_enabled{task="tick"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"claudecron_sessions{kind="mcp"}"#),
        Some(1.0)
    );
    assert!(
        !text.contains("run_id"),
        "no series is labelled with a run id"
    );
}

#[test]
fn calendar_feed_needs_its_own_key_and_lists_upcoming_fires() {
    let server = Server::start_default();
    assert_eq!(
        Req::get("/calendar.ics?key=anything-at-all-123")
            .send(server.port)
            .status,
        404,
        "no calendar_token: no feed"
    );
    drop(server);

    let key = "cal-0123456789abcdef";
    let server = Server::start(Options::default().env("CLAUDECRON_CALENDAR_TOKEN", key));
    let mcp = Mcp::new(&server);
    mcp.add_task(
        json!({"name": "nightly, \"db\"; backup", "type": "bash", "command": "true",
        "trigger": {"type": "cron", "schedule": "30 2 * * *", "timezone": "Europe/Berlin"}}),
    );
    mcp.add_task(
        json!({"name": "every minute", "type": "bash", "command": "true",
        "trigger": {"type": "cron", "schedule": "* * * * *"}}),
    );
    mcp.add_task(
        json!({"name": "paused", "type": "bash", "command": "true", "enabled": false,
        "trigger": {"type": "cron", "schedule": "0 * * * *"}}),
    );
    mcp.add_task(json!({"name": "by hand", "type": "bash", "command": "true",
        "trigger": {"type": "manual"}}));

    for (query, status) in [
        ("", 403),
        ("?key=", 403),
        ("?key=cal-0123456789abcdeX", 403),
        ("?token=cal-0123456789abcdef", 403),
    ] {
        let resp = Req::get(&format!("/calendar.ics{query}")).send(server.port);
        assert_eq!(resp.status, status, "{query}: {}", resp.describe());
    }
    // The token of /mcp does not open the feed either.
    let resp = Req::get(&format!("/calendar.ics?key={}", server.token())).send(server.port);
    assert_eq!(resp.status, 403);

    let resp = Req::get(&format!("/calendar.ics?key={key}")).send(server.port);
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert!(resp
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/calendar"));
    let body = resp.text();
    assert!(body.starts_with("BEGIN:VCALENDAR\r\n") && body.ends_with("END:VCALENDAR\r\n"));
    let unfolded = body.replace("\r\n ", "");
    let summaries: Vec<&str> = unfolded
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("SUMMARY:"))
        .collect();
    let nightly = summaries
        .iter()
        .filter(|s| **s == "nightly\\, \"db\"\\; backup")
        .count();
    assert!(
        (14..=15).contains(&nightly),
        "a daily task over 14 days: {nightly}"
    );
    let minute = summaries.iter().filter(|s| **s == "every minute").count();
    assert_eq!(minute, 100, "at most 100 fires per task");
    assert!(!summaries.contains(&"paused") && !summaries.contains(&"by hand"));
    // 02:30 in Berlin is 01:30 UTC in winter.
    assert!(unfolded.contains("T013000Z\r\n"), "{unfolded}");
    assert!(
        !server.stderr().contains(key),
        "the calendar key reached the log"
    );
}
