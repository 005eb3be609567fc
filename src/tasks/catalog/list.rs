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

impl Catalog {
    /// `list_tasks`: one row per task of the page; `count` rows, `total` matching tasks, and
    /// `next_cursor` unless this is the last page.
    pub fn list(&self, query: &ListQuery, now: DateTime<Utc>) -> OpResult {
        self.store.reading(|| self.list_page(query, now))
    }

    fn list_page(&self, query: &ListQuery, now: DateTime<Utc>) -> OpResult {
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
        let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        let last_runs = self.store.last_runs(&ids)?;
        // Why a disabled task was paused for its failures (one read per disabled task shown).
        let mut paused = HashMap::new();
        for task in tasks.iter().filter(|t| !t.spec.enabled) {
            if let Some((reason, _)) = self.store.failures(&task.id)?.and_then(|f| f.paused) {
                paused.insert(task.id.as_str(), reason);
            }
        }
        let pending = self.pending_ids(&tasks)?;
        let rows: Vec<Value> = tasks
            .iter()
            .map(|task| {
                let tz = parse_timezone(&task.spec.timezone).unwrap_or(chrono_tz::UTC);
                let next = next_fire_times(task, now, 1, &self.schedules);
                let mut row = crate::obj!(
                    "id": task.id.as_str(),
                    "name": task.spec.name.as_str(),
                    "type": task.spec.task_type.as_str(),
                    "enabled": task.spec.enabled,
                    "trigger": task.spec.trigger.kind().as_str(),
                    "trigger_summary": trigger_summary(task, &self.schedules),
                    "timezone": task.spec.timezone.as_str(),
                    "next_run": next.first().map(|t| time_pair(*t, tz)),
                    "last_run": last_runs.get(&task.id).map(|r| crate::obj!(
                        "id": r.id,
                        "status": r.status.as_str(),
                        "started_at": r.started_at.map(rfc3339_millis),
                        "finished_at": r.finished_at.map(rfc3339_millis),
                    )),
                );
                if let Some(reason) = paused.get(task.id.as_str()) {
                    row["paused_reason"] = reason.as_str().into();
                }
                if pending.contains(task.id.as_str()) {
                    row["pending_approval"] = true.into();
                }
                row
            })
            .collect();
        let mut page = crate::obj!("count": rows.len(), "total": total);
        if more {
            if let Some(last) = tasks.last() {
                page["next_cursor"] = encode_cursor(&last.spec.name, &last.id).into();
            }
        }
        page["tasks"] = Value::Array(rows);
        Ok(page)
    }
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
