//! The schema: every migration in order, each one self-contained SQL applied once (the
//! index of the last one applied is `PRAGMA user_version`). SQL text only; applying it is
//! `Store::migrate`'s job.

/// Forward migrations; `PRAGMA user_version` is the number applied.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: tasks and runs.
    "CREATE TABLE tasks (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE,
        type         TEXT NOT NULL,
        enabled      INTEGER NOT NULL,
        trigger_type TEXT NOT NULL,
        spec         TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );
    CREATE INDEX tasks_by_enabled ON tasks(enabled, trigger_type);
    CREATE TABLE runs (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id          TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        trigger          TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN
                           ('queued','running','success','failed','timeout','cancelled','skipped','interrupted')),
        scheduled_for    TEXT,
        queued_at        TEXT NOT NULL,
        started_at       TEXT,
        finished_at      TEXT,
        duration_ms      INTEGER,
        exit_code        INTEGER,
        signal           INTEGER,
        output           TEXT NOT NULL DEFAULT '',
        output_truncated INTEGER NOT NULL DEFAULT 0,
        error            TEXT,
        attempt          INTEGER NOT NULL DEFAULT 1,
        retry_of         INTEGER,
        runner           TEXT,
        model            TEXT,
        cost_usd         REAL,
        input_tokens     INTEGER,
        output_tokens    INTEGER,
        num_turns        INTEGER,
        session_id       TEXT,
        context          TEXT
    );
    CREATE UNIQUE INDEX runs_once_per_fire ON runs(task_id, scheduled_for) WHERE scheduled_for IS NOT NULL;
    CREATE INDEX runs_by_task_newest ON runs(task_id, id DESC);
    CREATE INDEX runs_by_status ON runs(status, id DESC);",
    // 2: the scheduler's cursor per task: the last fire time it has dealt with, so fires missed
    // while the server was down can be found at the next start.
    "CREATE TABLE task_state (
        task_id TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
        cursor  TEXT NOT NULL
    );",
    // 3: why an event trigger could not be armed (inotify limit, unreadable directory), shown
    // on the task until it arms again.
    "CREATE TABLE trigger_errors (
        task_id TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
        error   TEXT NOT NULL,
        at      TEXT NOT NULL
    );",
    // 4: list_tasks pages in name order, filtered: one index in name order, and one led by
    // each selective filter (status, trigger kind), each holding the other filtered columns, so
    // a page starts at its cursor and reads no table row it does not return, and a filtered
    // total counts only index entries. They replace tasks_by_enabled. (The type filter, two
    // values, is checked in the entries of the others.)
    "CREATE INDEX tasks_by_name ON tasks(name COLLATE NOCASE, id, enabled, type, trigger_type);
    CREATE INDEX tasks_by_enabled_name ON tasks(enabled, name COLLATE NOCASE, id, type, trigger_type);
    CREATE INDEX tasks_by_trigger_name ON tasks(trigger_type, name COLLATE NOCASE, id, enabled, type);
    DROP INDEX tasks_by_enabled;",
    // 5: the row /health writes to prove that the database accepts writes.
    "CREATE TABLE health (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        checked_at TEXT NOT NULL
    );",
    // 6: more facts about a run, as one JSON object: `worktree` {path, branch} (`worktree:
    // true`), `claude_code` {subtype, is_error, terminal_reason, permission_denials, rate_limit}.
    "ALTER TABLE runs ADD COLUMN details TEXT;",
    // 7: pause everything (`pause_all`): one row while paused, with the operator's reason; it
    // survives a restart.
    "CREATE TABLE pause_all (
        id     INTEGER PRIMARY KEY CHECK (id = 1),
        reason TEXT NOT NULL,
        since  TEXT NOT NULL
    );",
    // 8: auto-pause: a task's failed or timed-out runs in a row, and why (and when) it was
    // disabled for them.
    "CREATE TABLE task_failures (
        task_id       TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
        consecutive   INTEGER NOT NULL,
        paused_reason TEXT,
        paused_at     TEXT
    );",
    // 9: webhook triggers: the SHA-256 (hex) of each webhook task's URL token, never the token.
    "CREATE TABLE webhook_tokens (
        task_id      TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
        token_sha256 TEXT NOT NULL UNIQUE
    );",
    // 10: owner approval: the approved content's SHA-256 per task (`store::approval`); the tasks
    // that exist now keep running: they count as approved before approvals existed.
    "CREATE TABLE task_approvals (task_id TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
        content_sha256 TEXT NOT NULL, approved_at TEXT NOT NULL, approved_by TEXT NOT NULL);
    INSERT INTO task_approvals SELECT id, 'existing-before-approvals', updated_at, 'existing before approvals' FROM tasks;",
    // 11: dead-man alerts (`expect`): a task's window start (`since`: expect set, or enabled
    // again), last success, overdue mark (survives a restart), last dead-man message's outcome.
    "CREATE TABLE task_deadman (task_id TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
        since TEXT NOT NULL, last_success TEXT, overdue_since TEXT, notify TEXT);",
    // 12: the OAuth authorization server's tables (clients, grants, codes, tokens, approvals).
    super::oauth::MIGRATION,
    // 13: signed approvals (`tasks::approval`): an approval is the owner's Ed25519 signature of
    // the task's content; the unsigned rows written so far (the migration-10 mark, approvals
    // recorded while `require_approval` was off, unsigned `claudecron approve`) approve nothing.
    "ALTER TABLE task_approvals ADD COLUMN signature TEXT; DELETE FROM task_approvals;",
];
