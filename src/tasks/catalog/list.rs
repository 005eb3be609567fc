//! `list_tasks`: one page of tasks in name order with its filters, the total that match, and an
//! opaque cursor to the next page. A page costs the same with ten tasks or ten thousand: the
//! store pages and filters in an index, the last runs of the page come in one query, and cron
//! expressions from the shared `ScheduleCache`. The cursor is the last row's (name, id), so
//! paging is stable while tasks are added or deleted. Also the upcoming fires of every enabled
//! time-based task (`/calendar.ics`), bounded per task and in all.

use super::*;
use crate::store::TaskFilter;
use crate::tasks::model::TaskType;
use std::collections::HashMap;

/// Rows per page when the caller gives no `limit`.
pub const DEFAULT_PAGE: usize = 50;
/// The largest page.
pub const MAX_PAGE: usize = 500;

/// What `list_tasks` was asked for.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub enabled: Option<bool>,
    pub task_type: Option<TaskType>,
    pub trigger: Option<TriggerKind>,
    /// Case-insensitive (ASCII) substring of the name.
    pub name_contains: Option<String>,
    /// Rows per page, 1..=`MAX_PAGE`.
    pub limit: usize,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            enabled: None,
            task_type: None,
            trigger: None,
            name_contains: None,
            limit: DEFAULT_PAGE,
            cursor: None,
        }
    }
}

/// One page of `list_tasks`, as it is serialized.
#[derive(serde::Serialize)]
struct Page<'a> {
    count: usize,
    total: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    tasks: Vec<Row<'a>>,
}

/// One task's row of a page.
#[derive(serde::Serialize)]
struct Row<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(rename = "type")]
    task_type: &'static str,
    enabled: bool,
    trigger: &'static str,
    trigger_summary: String,
    timezone: &'a str,
    next_run: Option<TimePair>,
    last_run: Option<LastRun>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paused_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_approval: Option<bool>,
}

/// The newest run of a row's task.
#[derive(serde::Serialize)]
struct LastRun {
    id: i64,
    status: &'static str,
    started_at: Option<String>,
    finished_at: Option<String>,
}

impl Catalog {
    /// `list_tasks`: one row per task of the page; `count` rows, `total` matching tasks, and
    /// `next_cursor` unless this is the last page.
    pub fn list(&self, query: &ListQuery, now: DateTime<Utc>) -> OpResult {
        self.store.reading(|| {
            let tasks = self.page_tasks(query)?;
            let page = self.page(&tasks, now)?;
            serde_json::to_value(&page).map_err(|e| OpError::Internal(format!("task list: {e}")))
        })
    }

    /// [`Catalog::list`] as JSON bytes, written straight from the rows (no value tree), with
    /// `count`, `total` and `next_cursor` as the brief its summary line reads.
    pub fn list_encoded(&self, query: &ListQuery, now: DateTime<Utc>) -> Result<Encoded, OpError> {
        self.store.reading(|| {
            let tasks = self.page_tasks(query)?;
            let page = self.page(&tasks, now)?;
            let mut json = Vec::with_capacity(256 + 512 * page.tasks.len());
            crate::util::json_into(&mut json, &page)
                .map_err(|e| OpError::Internal(format!("task list: {e}")))?;
            let mut brief = crate::obj!("count": page.count, "total": page.total);
            if let Some(cursor) = &page.next_cursor {
                brief["next_cursor"] = cursor.as_str().into();
            }
            Ok(Encoded { json, brief })
        })
    }

    /// The tasks of the page `query` asks for, the one after it too when there is one.
    fn page_tasks(&self, query: &ListQuery) -> Result<PageTasks, OpError> {
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let limit = query.limit.clamp(1, MAX_PAGE);
        let filter = TaskFilter {
            enabled: query.enabled,
            task_type: query.task_type,
            trigger: query.trigger,
            name_contains: query.name_contains.clone().filter(|s| !s.is_empty()),
        };
        let after = after
            .as_ref()
            .map(|(name, id)| (name.as_str(), id.as_str()));
        // One row more than the page tells whether another page follows.
        let mut tasks = self.store.task_page(&filter, after, limit + 1)?;
        let more = tasks.len() > limit;
        tasks.truncate(limit);
        let total = self.store.count_matching(&filter)?;
        Ok(PageTasks { tasks, more, total })
    }

    fn page<'a>(&self, found: &'a PageTasks, now: DateTime<Utc>) -> Result<Page<'a>, OpError> {
        let tasks = &found.tasks;
        let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        let mut last_runs = self.store.last_runs(&ids)?;
        // Why a disabled task was paused for its failures (one read per disabled task shown).
        let mut paused = HashMap::new();
        for task in tasks.iter().filter(|t| !t.spec.enabled) {
            if let Some((reason, _)) = self.store.failures(&task.id)?.and_then(|f| f.paused) {
                paused.insert(task.id.as_str(), reason);
            }
        }
        let pending = self.pending_ids(tasks)?;
        let rows: Vec<Row<'a>> = tasks
            .iter()
            .map(|task| {
                let tz = parse_timezone(&task.spec.timezone).unwrap_or(chrono_tz::UTC);
                let next = next_fire_times(task, now, 1, &self.schedules);
                Row {
                    id: &task.id,
                    name: &task.spec.name,
                    task_type: task.spec.task_type.as_str(),
                    enabled: task.spec.enabled,
                    trigger: task.spec.trigger.kind().as_str(),
                    trigger_summary: trigger_summary(task, &self.schedules),
                    timezone: &task.spec.timezone,
                    next_run: next.first().map(|t| TimePair::new(*t, tz)),
                    last_run: last_runs.remove(&task.id).map(|r| LastRun {
                        id: r.id,
                        status: r.status.as_str(),
                        started_at: r.started_at.map(rfc3339_millis),
                        finished_at: r.finished_at.map(rfc3339_millis),
                    }),
                    paused_reason: paused.remove(task.id.as_str()),
                    pending_approval: pending.contains(task.id.as_str()).then_some(true),
                }
            })
            .collect();
        let next_cursor = match (found.more, tasks.last()) {
            (true, Some(last)) => Some(encode_cursor(&last.spec.name, &last.id)),
            _ => None,
        };
        Ok(Page {
            count: rows.len(),
            total: found.total,
            next_cursor,
            tasks: rows,
        })
    }
}

/// The tasks found for a page: `more` when another page follows; `total` matching tasks.
struct PageTasks {
    tasks: Vec<Task>,
    more: bool,
    total: i64,
}

/// The cursor after the row (name, id): base64url of `["name","id"]`.
pub fn encode_cursor(name: &str, id: &str) -> String {
    crate::util::base64url_encode(json!([name, id]).to_string().as_bytes())
}

/// (name, id) from a cursor; the error says where cursors come from.
pub(super) fn decode_cursor(cursor: &str) -> Result<(String, String), OpError> {
    crate::util::base64_decode(cursor)
        .and_then(|bytes| serde_json::from_slice::<(String, String)>(&bytes).ok())
        .ok_or_else(|| {
            OpError::Invalid(FieldError {
                field: "cursor".into(),
                message: "is not a cursor of claudecron_list_tasks; pass next_cursor of the previous page unchanged, or leave cursor out for the first page".into(),
            })
        })
}

/// One upcoming fire of a task (for the calendar feed).
#[derive(Debug, Clone, PartialEq)]
pub struct UpcomingFire {
    pub task_id: String,
    pub task_name: String,
    pub at: DateTime<Utc>,
    /// The trigger in words.
    pub trigger: String,
}

impl Catalog {
    /// The fires of enabled cron, interval and once tasks after `now` and up to `until`, at most
    /// `per_task` of each task and `total` in all, in time order.
    pub fn upcoming_fires(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        per_task: usize,
        total: usize,
    ) -> Result<Vec<UpcomingFire>, OpError> {
        let mut fires = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.timed_tasks_with_cursors(after, 512)?;
            let Some((last, _, _)) = page.last() else {
                break;
            };
            after = *last;
            for (_, task, _) in page {
                let trigger = trigger_summary(&task, &self.schedules);
                for at in next_fire_times(&task, now, per_task, &self.schedules) {
                    if at > until {
                        break;
                    }
                    fires.push(UpcomingFire {
                        task_id: task.id.clone(),
                        task_name: task.spec.name.clone(),
                        at,
                        trigger: trigger.clone(),
                    });
                }
            }
        }
        fires.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.task_name.cmp(&b.task_name)));
        fires.truncate(total);
        Ok(fires)
    }
}
