//! Unit tests of the catalog: shown fire times, list pages and cursors over a real store and
//! engine, and (ignored; run with `--release -- --ignored --nocapture`) timings of adds, list
//! pages and the engine's start-up reads at 10,000 tasks.

use super::*;
use crate::tasks::model::TaskType;
use list::decode_cursor;

mod encoded;

fn task(trigger: Value, enabled: bool) -> Task {
    let spec = serde_json::from_value(json!({
        "name": "t", "type": "bash", "enabled": enabled, "trigger": trigger,
        "timezone": "Europe/Moscow", "command": "true", "overlap": "skip", "catch_up": "skip",
        "retries": {"max_attempts": 0, "backoff_seconds": 30, "doubling": true}
    }))
    .unwrap();
    Task {
        id: "x".into(),
        spec,
        created_at: DateTime::UNIX_EPOCH,
        updated_at: DateTime::UNIX_EPOCH,
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn shown_fire_times_follow_the_engine_for_every_time_trigger() {
    let now = at("2026-11-26T06:57:00Z");
    let cache = ScheduleCache::default();
    let interval = task(
        json!({"type": "interval", "every": "15m", "every_seconds": 900, "start_at": "2026-11-26T00:05:00Z"}),
        true,
    );
    assert_eq!(
        next_fire_times(&interval, now, 3, &cache),
        [
            at("2026-11-26T07:05:00Z"),
            at("2026-11-26T07:20:00Z"),
            at("2026-11-26T07:35:00Z")
        ]
    );
    let cron = task(json!({"type": "cron", "schedule": "0 9 * * 1-5"}), true);
    assert_eq!(
        next_fire_times(&cron, now, 2, &cache),
        [at("2026-11-27T06:00:00Z"), at("2026-11-30T06:00:00Z")],
        "09:00 Moscow on weekdays"
    );
    let once = task(json!({"type": "once", "at": "2026-11-26T08:00:00Z"}), true);
    assert_eq!(
        next_fire_times(&once, now, 5, &cache),
        [at("2026-11-26T08:00:00Z")]
    );
    assert!(next_fire_times(&task(json!({"type": "manual"}), true), now, 5, &cache).is_empty());
    assert!(next_fire_times(&cron.clone_disabled(), now, 5, &cache).is_empty());
}

impl Task {
    fn clone_disabled(&self) -> Task {
        let mut t = self.clone();
        t.spec.enabled = false;
        t
    }
}

// ---------------------------------------------------------------------------------------------
// A catalog over a real store, engine and hook dispatch (the file watcher's inbox is dropped:
// its messages go nowhere).

/// The engine settings of these tests: 4 runs at once, 100 runs kept, short timeouts.
fn engine_settings(
    db_path: &std::path::Path,
    subagent: &crate::exec::subagent::SubagentSettings,
) -> crate::engine::EngineSettings {
    crate::engine::EngineSettings {
        daily_budget_usd: None,
        pause_after_failures: 0,
        require_approval: false,
        approval_key: None,
        db_path: db_path.to_path_buf(),
        max_concurrent: 4,
        history_keep_per_task: 100,
        run: crate::exec::run::RunSettings {
            subagent: subagent.clone(),
            output_max_bytes: 1 << 16,
            default_timeout_secs: 60,
            grace: std::time::Duration::from_secs(1),
            worktree_root: std::env::temp_dir().join("cc-catalog-worktrees"),
            worktree_keep: 1,
            notify_channels: Default::default(),
            stores: std::sync::Arc::new(crate::store::StorePool::new(db_path, 2)),
        },
    }
}

pub(super) fn source(tag: &str) -> (CatalogSource, crate::util::TestDir) {
    let dir = crate::util::TestDir::new(&format!("catalog-{tag}"));
    let db_path = dir.path().join("tasks.db");
    let subagent = crate::exec::subagent::SubagentSettings {
        claude_path: "claude-not-installed".into(),
        api_key: None,
        base_url: "http://127.0.0.1:9".into(),
        default_model: "m".into(),
        prices: Vec::new(),
    };
    let engine = crate::engine::start(
        engine_settings(&db_path, &subagent),
        Arc::new(|_: &crate::tasks::runs::RunEvent| {}),
    )
    .unwrap();
    let (watch, _inbox) = crate::triggers::watch::channel();
    let hooks = HookDispatcher::start(engine.clone()).unwrap();
    let source = CatalogSource::new(
        db_path,
        Defaults {
            timezone: "UTC".into(),
            task_timeout_secs: 60,
            subagent,
            worktree_root: std::env::temp_dir().join("cc-catalog-worktrees"),
            notify_channels: Vec::new(),
            require_approval: false,
            approval_key: None,
            secrets_file: std::env::temp_dir().join("cc-catalog-no-secrets.json"),
        },
        Services {
            engine,
            watch,
            hooks,
        },
    );
    (source, dir)
}

/// The add_task arguments of task `i` of a mixed set: cron (60%), interval, manual, hook.
fn task_args(i: usize) -> Value {
    let mut args = json!({"name": format!("task-{i:05}"), "type": "bash", "command": "true",
                          "timezone": "Europe/Moscow"});
    let trigger = match i % 10 {
        0..=5 => {
            args["schedule"] = format!("{} {} * * *", i % 60, (i / 60) % 24).into();
            return args;
        }
        6 | 7 => json!({"type": "interval", "every": format!("{}m", 5 + i % 50)}),
        8 => json!({"type": "manual"}),
        _ => json!({"type": "hook", "event": "PostToolUse", "matcher": "Edit"}),
    };
    args["trigger"] = trigger;
    args
}

fn names(page: &Value) -> Vec<String> {
    page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of a query: the rows' names, page by page.
fn walk(catalog: &Catalog, query: &ListQuery, now: DateTime<Utc>) -> Vec<Vec<String>> {
    let mut query = query.clone();
    let mut pages = Vec::new();
    loop {
        let page = catalog.list(&query, now).unwrap();
        assert_eq!(page["count"], page["tasks"].as_array().unwrap().len());
        pages.push(names(&page));
        match page.get("next_cursor") {
            Some(c) => query.cursor = Some(c.as_str().unwrap().to_string()),
            None => return pages,
        }
    }
}

#[test]
fn a_cached_preview_answers_as_a_fresh_parse_errors_included() {
    let (source, _dir) = source("preview");
    let catalog = source.open().unwrap();
    let now = DateTime::parse_from_rfc3339("2026-03-07T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let show = |r: OpResult| match r {
        Ok(v) => v.to_string(),
        Err(OpError::Invalid(e)) => format!("invalid {}: {}", e.field, e.message),
        Err(e) => format!("other: {e:?}"),
    };
    for (expr, tz) in [
        ("*/15 9-17 * * 1-5", "UTC"),
        ("30 2 * * 0", "America/New_York"),
        ("0 0 30 2 *", "UTC"),
        ("61 * * * *", "UTC"),
        ("@daily", "Mars/Base"),
        ("0 0 0 1 1 * 2020", "UTC"),
    ] {
        let fresh = show(preview_schedule(expr, tz, 7, now));
        for round in 0..3 {
            let later = now + chrono::Duration::minutes(7 * round);
            assert_eq!(
                show(catalog.preview_schedule(expr, tz, 7, later)),
                show(preview_schedule(expr, tz, 7, later)),
                "{expr} in {tz}, round {round}"
            );
        }
        assert!(!fresh.is_empty());
    }
}

#[test]
fn cursors_round_trip_any_name_and_a_bad_one_names_the_field() {
    for name in ["a", "ab", "abc", "Ünïcødé \"quoted\" ☃", "x%_\\y", ""] {
        let cursor = encode_cursor(name, "id-1");
        assert!(cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let (n, id) = decode_cursor(&cursor).unwrap();
        assert_eq!((n.as_str(), id.as_str()), (name, "id-1"));
    }
    for bad in ["", "a", "!!!!", "WyJhIl0"] {
        match decode_cursor(bad) {
            Err(OpError::Invalid(e)) => assert_eq!(e.field, "cursor"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn pages_walk_every_task_once_in_name_order_and_filter_in_the_store() {
    let (source, _dir) = source("pages");
    let catalog = source.open().unwrap();
    let now = Utc::now();
    for i in 0..53 {
        catalog.add(&task_args(i), now).unwrap();
    }
    // Names that differ only in case, and LIKE's own characters, taken literally.
    for name in ["Task-00007b", "task-00007B", "100%_done", "100xydone"] {
        let mut args = task_args(8);
        args["name"] = name.into();
        catalog.add(&args, now).unwrap();
    }
    let all = ListQuery {
        limit: 7,
        ..ListQuery::default()
    };
    let pages = walk(&catalog, &all, now);
    assert!(pages.iter().all(|p| p.len() <= 7));
    let flat: Vec<String> = pages.concat();
    assert_eq!(flat.len(), 57, "every task once");
    let mut sorted = flat.clone();
    sorted.sort_by_key(|n| n.to_ascii_lowercase());
    assert_eq!(flat, sorted, "name order, case-insensitive");
    let first = catalog.list(&all, now).unwrap();
    assert_eq!(first["total"], 57);
    assert_eq!(first["count"], 7);

    // Filters: in the store, with the total of the filter.
    let query = |f: fn(&mut ListQuery)| {
        let mut q = ListQuery {
            limit: 5,
            ..ListQuery::default()
        };
        f(&mut q);
        let total = catalog.list(&q, now).unwrap()["total"].as_i64().unwrap();
        (walk(&catalog, &q, now).concat(), total)
    };
    let (hooks, total) = query(|q| q.trigger = Some(TriggerKind::Hook));
    assert_eq!((hooks.len() as i64, total), (5, 5), "{hooks:?}");
    assert!(hooks.iter().all(|n| n.ends_with('9')));
    let (found, _) = query(|q| q.name_contains = Some("%_".into()));
    assert_eq!(found, ["100%_done"]);
    let (found, _) = query(|q| q.name_contains = Some("TASK-00007".into()));
    // The two names equal but for case come in id order (random ids).
    assert_eq!(found[0], "task-00007");
    let mut twins = found[1..].to_vec();
    twins.sort();
    assert_eq!(twins, ["Task-00007b", "task-00007B"]);
    let (found, total) = query(|q| q.task_type = Some(TaskType::Subagent));
    assert_eq!((found.len(), total), (0, 0));

    // Disabled tasks, and a page stays stable while tasks are added before the cursor.
    catalog
        .toggle("task-00003", false, now)
        .and_then(|_| catalog.toggle("task-00040", false, now))
        .unwrap();
    let (disabled, total) = query(|q| q.enabled = Some(false));
    assert_eq!(
        (disabled, total),
        (vec!["task-00003".into(), "task-00040".into()], 2)
    );
    let page = catalog.list(&all, now).unwrap();
    let mut next = all.clone();
    next.cursor = page["next_cursor"].as_str().map(String::from);
    let before = names(&catalog.list(&next, now).unwrap());
    let mut early = task_args(8);
    early["name"] = "aaa-inserted-first".into();
    catalog.add(&early, now).unwrap();
    assert_eq!(names(&catalog.list(&next, now).unwrap()), before);
}

#[test]
fn each_row_shows_the_newest_run_of_its_task() {
    let (source, _dir) = source("last-runs");
    let catalog = source.open().unwrap();
    let now = Utc::now();
    let mut ids = Vec::new();
    for i in 0..3 {
        let added = catalog.add(&task_args(8 + 10 * i), now).unwrap();
        ids.push(added["task"]["id"].as_str().unwrap().to_string());
    }
    let mut newest = Vec::new();
    for (i, id) in ids.iter().enumerate().take(2) {
        for _ in 0..=i {
            let run = crate::store::NewRun::manual(id, RunStatus::Skipped, now);
            newest.push(catalog.store.insert_run(&run).unwrap());
        }
    }
    let page = catalog.list(&ListQuery::default(), now).unwrap();
    let rows = page["tasks"].as_array().unwrap();
    assert_eq!(rows[0]["last_run"]["id"], newest[0]);
    assert_eq!(rows[1]["last_run"]["id"], newest[2]);
    assert_eq!(rows[1]["last_run"]["status"], "skipped");
    assert!(rows[2]["last_run"].is_null());
}

// ---------------------------------------------------------------------------------------------
// Timings (no assertions on time): cargo test --release --lib catalog::tests::timings --
// --ignored --nocapture

fn micros(d: std::time::Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

#[test]
#[ignore = "a measurement, not a test: run in release with --ignored --nocapture"]
fn timings() {
    use std::time::Instant;
    let (source, _dir) = source("timings");
    let catalog = source.open().unwrap();
    let now = Utc::now();
    let mut added = 0;
    for target in [1_000, 10_000] {
        let started = Instant::now();
        for i in added..target {
            catalog.add(&task_args(i), now).unwrap();
        }
        let took = started.elapsed();
        println!(
            "add {}..{target}: {:.0} adds/s ({:.0} µs each)",
            added,
            (target - added) as f64 / took.as_secs_f64(),
            micros(took, target - added)
        );
        added = target;
        let first = ListQuery::default();
        let mut middle = first.clone();
        middle.cursor = Some(encode_cursor(&format!("task-{:05}", target / 2), ""));
        for (label, q) in [
            ("first page", first.clone()),
            ("middle page", middle),
            (
                "enabled cron tasks",
                ListQuery {
                    enabled: Some(true),
                    trigger: Some(TriggerKind::Cron),
                    ..ListQuery::default()
                },
            ),
            (
                "search \"-0999\"",
                ListQuery {
                    name_contains: Some("-0999".into()),
                    ..ListQuery::default()
                },
            ),
        ] {
            let n = 200;
            let started = Instant::now();
            for _ in 0..n {
                std::hint::black_box(catalog.list(&q, now).unwrap());
            }
            let took = started.elapsed();
            let page = catalog.list(&q, now).unwrap();
            println!(
                "  list {label} at {target}: {:.0} µs per page of {} (total {})",
                micros(took, n),
                page["count"],
                page["total"]
            );
        }
    }
    // What the engine reads at start: as it does it now (three queries, one cursor query and
    // one parse per task), and with `timed_tasks_with_cursors` (with and without a cache).
    let store = Store::open(&source.db_path).unwrap();
    let started = Instant::now();
    let mut armed = 0;
    for kind in [TriggerKind::Cron, TriggerKind::Interval, TriggerKind::Once] {
        for task in store.enabled_tasks_with_trigger(kind).unwrap() {
            let cursor = store.cursor(&task.id).unwrap();
            armed += FireRule::of(&task.spec).map(|r| (r, cursor)).is_some() as usize;
        }
    }
    println!(
        "engine start reads today: {armed} tasks in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    for cached in [false, true] {
        let cache = ScheduleCache::default();
        let started = Instant::now();
        let tasks = store.timed_tasks_with_cursors(0, usize::MAX).unwrap();
        let read = started.elapsed();
        let rules: Vec<(FireRule, Option<DateTime<Utc>>)> = tasks
            .iter()
            .filter_map(|(_, t, cursor)| match cached {
                true => FireRule::of_cached(&t.spec, &cache).map(|r| (r, *cursor)),
                false => FireRule::of(&t.spec).map(|r| (r, *cursor)),
            })
            .collect();
        println!(
            "engine start reads with one query{}: {} tasks in {:.1} ms ({:.1} ms the query and decoding)",
            if cached { " and a ScheduleCache" } else { "" },
            rules.len(),
            started.elapsed().as_secs_f64() * 1e3,
            read.as_secs_f64() * 1e3
        );
        let started = Instant::now();
        for (rule, cursor) in &rules {
            std::hint::black_box(rule.next_after(cursor.unwrap_or(now)));
        }
        println!(
            "  then the next fire time of each: {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    let started = Instant::now();
    let n = 2000;
    for i in 0..n {
        std::hint::black_box(Schedule::load(&format!("{} {} * * *", i % 60, i % 24)).unwrap());
    }
    println!("Schedule::load: {:.1} µs", micros(started.elapsed(), n));
    let started = Instant::now();
    let engine = crate::engine::start(
        engine_settings(&source.db_path, &source.defaults.subagent),
        Arc::new(|_: &crate::tasks::runs::RunEvent| {}),
    )
    .unwrap();
    println!(
        "engine::start with {added} tasks: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    engine.shutdown(std::time::Duration::from_secs(1));
}
