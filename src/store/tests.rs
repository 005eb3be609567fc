//! Unit tests of the store: create, reopen, migrate, cascade, unique fire times, backup.

use super::*;
use crate::tasks::model::*;

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
        store
            .insert_task("t1", &spec("one"), at("2026-01-01T00:00:00Z"))
            .unwrap();
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
            .insert_run(&NewRun {
                task_id: "t1",
                trigger: TriggerKind::Manual,
                status: RunStatus::Queued,
                scheduled_for: None,
                queued_at: at("2026-01-01T00:00:00Z"),
                error: None,
                attempt: 1,
                retry_of: None,
                context: None,
            })
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
        task_id: "t1",
        trigger: TriggerKind::Cron,
        status: RunStatus::Queued,
        scheduled_for: Some(at("2026-01-01T02:00:00Z")),
        queued_at: at("2026-01-01T02:00:00Z"),
        error: None,
        attempt: 1,
        retry_of: None,
        context: None,
    };
    store.insert_run(&run).unwrap();
    assert!(store.insert_run(&run).is_err());
}
