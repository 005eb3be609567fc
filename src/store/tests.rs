//! Unit tests of the store: create, reopen, migrate, cascade, unique fire times, backup, the
//! query plans of the hot statements, list pages and totals, and faults (the file deleted or
//! replaced, read-only, locked).

use super::*;
use crate::tasks::model::*;
use fault::FaultKind;

fn at(text: &str) -> DateTime<Utc> {
    parse_utc(text).unwrap()
}

fn spec(name: &str) -> TaskSpec {
    TaskSpec {
        name: name.into(),
        task_type: TaskType::Bash,
        description: None,
        enabled: true,
        trigger: Trigger::Manual,
        timezone: "UTC".into(),
        command: Some("true".into()),
        prompt: None,
        cwd: None,
        env: Default::default(),
        timeout_seconds: None,
        model: None,
        runner: None,
        allowed_tools: vec![],
        max_turns: None,
        permission_mode: None,
        max_tokens: None,
        system: None,
        overlap: Overlap::Skip,
        catch_up: CatchUp::Skip,
        retries: Retries::default(),
        notify: None,
        expect: None,
        guards: Default::default(),
    }
}

fn temp_db(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cc-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("nested/tasks.db")
}

#[test]
fn create_reopen_keeps_tasks_and_schema_version() {
    let path = temp_db("reopen");
    {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        // What an insert returns is what is stored (it is not read back): times to the second.
        let inserted = store
            .insert_task("t1", &spec("one"), at("2026-01-01T00:00:00.750Z"))
            .unwrap();
        assert_eq!(Some(inserted), store.get_task("t1").unwrap());
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let task = store.find_task("one").unwrap().unwrap();
    assert_eq!(task.id, "t1");
    assert_eq!(task.spec, spec("one"));
    assert_eq!(store.quick_check().unwrap(), "ok");
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_message() {
    let path = temp_db("newer");
    {
        let store = Store::open(&path).unwrap();
        store
            .conn
            .pragma_update(None, "user_version", SCHEMA_VERSION + 5)
            .unwrap();
    }
    let err = Store::open(&path).err().unwrap().to_string();
    assert!(err.contains("newer than this build"), "{err}");
}

#[test]
fn names_are_unique_and_deleting_a_task_deletes_its_runs() {
    let path = temp_db("cascade");
    let store = Store::open(&path).unwrap();
    store
        .insert_task("t1", &spec("same"), at("2026-01-01T00:00:00Z"))
        .unwrap();
    let dup = store.insert_task("t2", &spec("same"), at("2026-01-01T00:00:00Z"));
    assert!(matches!(dup, Err(StoreError::NameTaken(n)) if n == "same"));
    for _ in 0..3 {
        store
            .insert_run(&NewRun::manual(
                "t1",
                RunStatus::Queued,
                at("2026-01-01T00:00:00Z"),
            ))
            .unwrap();
    }
    assert_eq!(store.list_runs(Some("t1"), None, 10).unwrap().len(), 3);
    let (_, removed) = store.delete_task("t1").unwrap().unwrap();
    assert_eq!(removed, 3);
    assert_eq!(store.list_runs(None, None, 10).unwrap().len(), 0);
}

#[test]
fn backup_copies_a_live_database_consistently() {
    let path = temp_db("backup");
    let store = Store::open(&path).unwrap();
    store
        .insert_task("t1", &spec("kept"), at("2026-01-01T00:00:00Z"))
        .unwrap();
    let other = Store::open(&path).unwrap(); // a second live connection, as while serving
    let dest = path.with_file_name("copy.db");
    let (tasks, runs) = other.backup_to(&dest).unwrap();
    assert_eq!((tasks, runs), (1, 0));
    let copy = Store::open(&dest).unwrap();
    assert_eq!(copy.find_task("kept").unwrap().unwrap().id, "t1");
    assert_eq!(copy.quick_check().unwrap(), "ok");
}

#[test]
fn one_run_per_task_and_fire_time() {
    let path = temp_db("unique-fire");
    let store = Store::open(&path).unwrap();
    store
        .insert_task("t1", &spec("fires"), at("2026-01-01T00:00:00Z"))
        .unwrap();
    let run = NewRun {
        trigger: TriggerKind::Cron,
        scheduled_for: Some(at("2026-01-01T02:00:00Z")),
        ..NewRun::manual("t1", RunStatus::Queued, at("2026-01-01T02:00:00Z"))
    };
    store.insert_run(&run).unwrap();
    assert!(store.insert_run(&run).is_err());
}

/// `EXPLAIN QUERY PLAN` of a statement, one line per step.
fn plan(store: &Store, sql: &str, values: Vec<rusqlite::types::Value>) -> String {
    let mut stmt = store
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(values), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    rows.join("\n")
}

#[test]
fn hot_statements_read_indexes_not_whole_tables() {
    use rusqlite::types::Value::Text;
    let store = Store::open(&temp_db("plans")).unwrap();
    let after = Some(("m", "id"));
    let page = |filter: &TaskFilter| {
        let (sql, values) = pages::page_query(filter, after, 51);
        plan(&store, &sql, values)
    };
    let count = |filter: &TaskFilter| {
        let (sql, values) = pages::count_query(filter);
        plan(&store, &sql, values)
    };
    // A page after a cursor starts in an index in name order at the cursor, led by the
    // filtered column if any, and is never sorted.
    let all = page(&TaskFilter::default());
    assert!(all.contains("INDEX tasks_by_name (name>?)"), "{all}");
    let disabled = TaskFilter {
        enabled: Some(false),
        ..TaskFilter::default()
    };
    let plan_disabled = page(&disabled);
    assert!(
        plan_disabled.contains("INDEX tasks_by_enabled_name (enabled=? AND name>?)"),
        "{plan_disabled}"
    );
    let hooks = TaskFilter {
        trigger: Some(TriggerKind::Hook),
        ..TaskFilter::default()
    };
    let plan_hooks = page(&hooks);
    assert!(
        plan_hooks.contains("INDEX tasks_by_trigger_name (trigger_type=? AND name>?)"),
        "{plan_hooks}"
    );
    for p in [&all, &plan_disabled, &plan_hooks] {
        assert!(!p.contains("TEMP B-TREE"), "{p}");
    }
    // A filtered total counts the matching entries of that index.
    let total = count(&disabled);
    assert!(
        total.contains("COVERING INDEX tasks_by_enabled_name (enabled=?)"),
        "{total}"
    );
    // The last runs of a page: one index search per task, no scan of runs.
    let last = plan(&store, pages::LAST_RUNS, vec![Text("[\"a\",\"b\"]".into())]);
    assert!(
        !last.contains("SCAN runs") && !last.contains("SCAN r"),
        "{last}"
    );
    assert!(last.contains("runs_by_task_newest (task_id=?)"), "{last}");
    // The engine's start: enabled time-based tasks from an index, cursors by key.
    let timed = plan(&store, pages::TIMED_TASKS, vec![0.into(), 500.into()]);
    assert!(
        timed.contains("SEARCH t USING INTEGER PRIMARY KEY (rowid>?)")
            && !timed.contains("TEMP B-TREE"),
        "{timed}"
    );
    assert!(timed.contains("SEARCH s USING INDEX"), "{timed}");
    // One task's history: its runs from its index.
    let history = plan(
        &store,
        "SELECT id FROM runs WHERE task_id = ?1 ORDER BY id DESC LIMIT ?3",
        vec![Text("a".into()), rusqlite::types::Value::Null, 5.into()],
    );
    assert!(
        history.contains("runs_by_task_newest (task_id=?)"),
        "{history}"
    );
    // The form list_tasks and get_history used before, kept here to show why it was replaced:
    // a scan of every run for each task.
    let old = plan(
        &store,
        "SELECT id FROM runs WHERE (?1 IS NULL OR task_id = ?1) AND (?2 IS NULL OR status = ?2)
         ORDER BY id DESC LIMIT ?3",
        vec![Text("a".into()), rusqlite::types::Value::Null, 1.into()],
    );
    assert!(old.contains("SCAN runs"), "{old}");
}

#[test]
fn a_deleted_database_file_refuses_writes_and_is_not_created_again() {
    let path = temp_db("deleted");
    let store = Store::open(&path).unwrap();
    let now = at("2026-01-01T00:00:00Z");
    store.insert_task("t1", &spec("before"), now).unwrap();
    store.check_writable(now).unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = store.insert_task("t2", &spec("after"), now).unwrap_err();
    match &err {
        StoreError::Fault(f) => assert_eq!(f.kind, FaultKind::Deleted),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("was deleted"), "{err}");
    assert!(
        err.to_string().contains("tasks.db"),
        "names the file: {err}"
    );
    assert!(store.check_writable(now).is_err());
    assert!(store.set_cursor("t1", now).is_err());
    // A new connection (a run thread, a worker) does not create an empty database there.
    let reopened = Store::open(&path).err().expect("refused");
    assert!(reopened.to_string().contains("was deleted"), "{reopened}");
    assert!(!path.exists());
}

#[test]
fn a_replaced_database_file_refuses_writes() {
    let path = temp_db("replaced");
    let store = Store::open(&path).unwrap();
    let other = path.with_file_name("other.db");
    drop(Store::open(&other).unwrap());
    std::fs::rename(&other, &path).unwrap();
    let err = store
        .set_cursor("t1", at("2026-01-01T00:00:00Z"))
        .unwrap_err();
    assert!(err.to_string().contains("was replaced"), "{err}");
    assert!(Store::open(&path).is_err());
}

#[test]
fn a_read_only_connection_names_the_cause() {
    let store = Store::open(&temp_db("read-only")).unwrap();
    store.conn.execute_batch("PRAGMA query_only = 1").unwrap();
    let err = store
        .check_writable(at("2026-01-01T00:00:00Z"))
        .unwrap_err();
    match &err {
        StoreError::Fault(f) => assert_eq!(f.kind, FaultKind::ReadOnly, "{f}"),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("read-only"), "{err}");
    store.conn.execute_batch("PRAGMA query_only = 0").unwrap();
    store.check_writable(at("2026-01-01T00:00:00Z")).unwrap();
}

#[test]
fn a_lock_held_by_another_connection_is_named_within_the_health_wait() {
    let path = temp_db("locked");
    let store = Store::open(&path).unwrap();
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let err = store
        .check_writable(at("2026-01-01T00:00:00Z"))
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the health wait is short"
    );
    assert!(err.to_string().contains("locked"), "{err}");
    other.execute_batch("ROLLBACK").unwrap();
    store.check_writable(at("2026-01-01T00:00:00Z")).unwrap();
}

#[test]
fn pages_and_counts_follow_the_filters() {
    let store = Store::open(&temp_db("pages")).unwrap();
    let now = at("2026-01-01T00:00:00Z");
    for (i, name) in ["b", "A", "a", "c_1", "C%1"].iter().enumerate() {
        let mut s = spec(name);
        s.enabled = i % 2 == 0;
        store.insert_task(&format!("id{i}"), &s, now).unwrap();
    }
    let page = |f: &TaskFilter, after: Option<(&str, &str)>, n| -> Vec<String> {
        let tasks = store.task_page(f, after, n).unwrap();
        tasks.into_iter().map(|t| t.spec.name).collect()
    };
    let all = TaskFilter::default();
    assert_eq!(page(&all, None, 10), ["A", "a", "b", "C%1", "c_1"]);
    assert_eq!(page(&all, Some(("A", "id1")), 2), ["a", "b"]);
    assert_eq!(page(&all, Some(("a", "id2")), 10), ["b", "C%1", "c_1"]);
    let enabled = TaskFilter {
        enabled: Some(true),
        ..TaskFilter::default()
    };
    assert_eq!(page(&enabled, None, 10), ["a", "b", "C%1"]);
    assert_eq!(store.count_matching(&enabled).unwrap(), 3);
    assert_eq!(store.count_matching(&all).unwrap(), 5);
    let like = TaskFilter {
        name_contains: Some("_".into()),
        ..TaskFilter::default()
    };
    assert_eq!(page(&like, None, 10), ["c_1"]);
    assert_eq!(store.count_matching(&like).unwrap(), 1);
    let names = store.task_names(&["id0", "id4", "gone"]).unwrap();
    assert_eq!(names.len(), 2);
    assert_eq!(names["id4"], "C%1");
}

/// With SQLite's STAT4 (on in the bundled build), a statement whose LIMIT or LIKE pattern is a
/// parameter was compiled again at every call (rusqlite clears a cached statement's bindings,
/// so each call "changes" them): a quarter of a `get_task`'s instructions. Store connections
/// turn on the query planner stability guarantee, which keeps the first plan.
#[test]
fn rebinding_a_limit_or_a_like_pattern_never_recompiles_a_statement() {
    let store = Store::open(&temp_db("reprepare")).unwrap();
    for i in 0..3 {
        let id = format!("id{i}");
        store
            .insert_task(&id, &spec(&format!("n{i}")), at("2026-01-01T00:00:00Z"))
            .unwrap();
    }
    for sql in [
        "SELECT id FROM runs WHERE task_id = ?1 ORDER BY id DESC LIMIT ?2",
        "SELECT id FROM tasks WHERE name LIKE ?1 ESCAPE '\\' LIMIT ?2",
    ] {
        for i in 0..20i64 {
            let first = if sql.contains("LIKE") {
                format!("%{}%", i % 3)
            } else {
                format!("id{}", i % 3)
            };
            let mut st = store.conn.prepare_cached(sql).unwrap();
            let mut rows = st.query(rusqlite::params![first, 1 + i]).unwrap();
            while rows.next().unwrap().is_some() {}
        }
        let st = store.conn.prepare_cached(sql).unwrap();
        assert_eq!(
            st.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "{sql}"
        );
    }
}

#[test]
fn arming_pages_visit_every_enabled_timed_task_once() {
    let store = Store::open(&temp_db("arm-pages")).unwrap();
    let t0 = at("2026-01-01T00:00:00Z");
    let mut expected = std::collections::BTreeSet::new();
    for i in 0..1100 {
        let mut s = spec(&format!("t{i}"));
        s.trigger = match i % 4 {
            0 => Trigger::Cron {
                schedule: "0 * * * *".into(),
            },
            1 => Trigger::Manual,
            _ => Trigger::Once {
                at: "2030-01-01T00:00:00Z".into(),
            },
        };
        s.enabled = i % 7 != 0;
        if s.enabled && i % 4 != 1 {
            expected.insert(format!("id{i}"));
        }
        store.insert_task(&format!("id{i}"), &s, t0).unwrap();
    }
    let (mut seen, mut after, mut pages) = (Vec::new(), 0, 0);
    loop {
        let page = store.timed_tasks_with_cursors(after, 300).unwrap();
        let Some((last, _, _)) = page.last() else {
            break;
        };
        after = *last;
        pages += 1;
        seen.extend(page.into_iter().map(|(_, t, _)| t.id));
    }
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(seen.len(), expected.len(), "each once");
    assert_eq!(
        seen.into_iter().collect::<std::collections::BTreeSet<_>>(),
        expected
    );
}

#[test]
fn lock_waits_start_short_and_stop_at_the_budget() {
    use busy::{busy_step, busy_wait};
    assert_eq!(busy_step(0), Duration::from_micros(50));
    assert_eq!(busy_step(40), Duration::from_millis(10));
    // The handler itself, on a 3 ms budget: waits of 50, 100, 200, 400, 800 µs, then the rest
    // of the budget (1,450 µs), then gives up.
    BUSY_BUDGET.with(|b| b.set(Duration::from_millis(3)));
    let started = std::time::Instant::now();
    let mut attempts = 0;
    while busy_wait(attempts) {
        attempts += 1;
        assert!(attempts < 100, "the handler never gave up");
    }
    BUSY_BUDGET.with(|b| b.set(BUSY_WAIT));
    assert_eq!(attempts, 6);
    assert!(started.elapsed() >= Duration::from_millis(3));
}

#[test]
fn dead_man_state_starts_from_the_last_success_counts_successes_and_goes_with_its_task() {
    let store = Store::open(&temp_db("deadman")).unwrap();
    let now = at("2026-11-28T10:00:00Z");
    let mut with_expect = spec("watched");
    with_expect.expect = Some(Expect {
        within: Some("26h".into()),
        grace: None,
    });
    store.insert_task("t1", &with_expect, now).unwrap();
    store.insert_task("t2", &spec("plain"), now).unwrap();
    assert_eq!(store.tasks_with_expect("", 10).unwrap(), ["t1"]);
    assert_eq!(
        store.tasks_with_expect("t1", 10).unwrap(),
        Vec::<String>::new()
    );
    // A success already in the history is where the window starts.
    let run = store
        .insert_run(&NewRun::manual("t1", RunStatus::Queued, now))
        .unwrap();
    let end = RunEnd {
        status: RunStatus::Success,
        finished_at: at("2026-11-28T09:00:00.250Z"),
        duration_ms: Some(1),
        exit_code: Some(0),
        signal: None,
        output: "",
        output_truncated: false,
        error: None,
    };
    store.finish_run(run, &end).unwrap();
    let state = store.start_deadman("t1", now).unwrap();
    assert_eq!(state.since, now);
    assert_eq!(state.last_success, Some(at("2026-11-28T09:00:00.250Z")));
    assert_eq!(state.overdue_since, None);
    // Started again: kept as it is.
    assert_eq!(
        store
            .start_deadman("t1", at("2026-11-29T00:00:00Z"))
            .unwrap(),
        state
    );
    // Overdue, reported; a success clears it and says since when it was overdue.
    store.set_overdue("t1", at("2026-11-29T11:00:00Z")).unwrap();
    store
        .set_deadman_notify("t1", &serde_json::json!({"status": "delivered"}))
        .unwrap();
    let state = store.deadman("t1").unwrap().unwrap();
    assert_eq!(state.overdue_since, Some(at("2026-11-29T11:00:00Z")));
    assert_eq!(state.notify.unwrap()["status"], "delivered");
    let was = store
        .deadman_success("t1", at("2026-11-29T12:00:00Z"))
        .unwrap();
    assert_eq!(was, Some(at("2026-11-29T11:00:00Z")));
    let state = store.deadman("t1").unwrap().unwrap();
    assert_eq!(state.overdue_since, None);
    assert_eq!(state.last_success, Some(at("2026-11-29T12:00:00Z")));
    assert_eq!(
        store
            .deadman_success("t1", at("2026-11-29T13:00:00Z"))
            .unwrap(),
        None
    );
    store
        .restart_deadman_window("t1", at("2026-11-30T00:00:00Z"))
        .unwrap();
    assert_eq!(
        store.deadman("t1").unwrap().unwrap().since,
        at("2026-11-30T00:00:00Z")
    );
    // Gone with its task; dropped on its own.
    store.delete_task("t1").unwrap();
    assert_eq!(store.deadman("t1").unwrap(), None);
    store.start_deadman("t2", now).unwrap();
    store.drop_deadman("t2").unwrap();
    assert_eq!(store.deadman("t2").unwrap(), None);
}

#[test]
fn a_kept_decoded_task_serves_only_while_its_row_is_unchanged() {
    let path = temp_db("decoded");
    let mut store = Store::open(&path).unwrap();
    store.keep_decoded(2);
    let now = at("2026-01-01T00:00:00Z");
    store.insert_task("t1", &spec("one"), now).unwrap();
    assert_eq!(store.get_task("t1").unwrap().unwrap().spec.name, "one");
    // Changed within the same second (same updated_at): the definition differs, so it is read
    // anew, by this connection or by another one.
    let mut changed = spec("one");
    changed.command = Some("echo changed".into());
    Store::open(&path)
        .unwrap()
        .update_task("t1", &changed, now)
        .unwrap();
    let got = store.get_task("t1").unwrap().unwrap();
    assert_eq!(got.spec.command.as_deref(), Some("echo changed"));
    // More tasks than it keeps: every one still reads right.
    for i in 2..6 {
        store
            .insert_task(&format!("t{i}"), &spec(&format!("n{i}")), now)
            .unwrap();
    }
    for i in 2..6 {
        let task = store.get_task(&format!("t{i}")).unwrap().unwrap();
        assert_eq!(task.spec.name, format!("n{i}"));
    }
    assert!(store.decoded.borrow().len() <= 2);
    let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
}
