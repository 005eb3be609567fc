//! Cron schedules: parsing crontab expressions, next fire times in a task's zone, and the
//! expression in words. Pure computation: never touches the clock, the store or the network.
//! (Placeholder API; the schedule helper fills it in.)

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A validated crontab expression.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
}

impl Schedule {
    /// Parse and validate; the error says what is wrong and what is accepted.
    pub fn parse(expression: &str) -> Result<Schedule, String> {
        Ok(Schedule {
            expression: expression.to_string(),
        })
    }
    /// The expression as the user gave it.
    pub fn expression(&self) -> &str {
        &self.expression
    }
    /// The first fire time strictly after `after`, in `tz`.
    pub fn next_after(&self, _after: DateTime<Utc>, _tz: Tz) -> Option<DateTime<Tz>> {
        None
    }
    /// Up to `count` fire times strictly after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, tz: Tz, count: usize) -> Vec<DateTime<Tz>> {
        let mut out = Vec::new();
        let mut cursor = after;
        while out.len() < count {
            match self.next_after(cursor, tz) {
                Some(t) => {
                    cursor = t.with_timezone(&Utc);
                    out.push(t);
                }
                None => break,
            }
        }
        out
    }
    /// One line of English.
    pub fn describe(&self) -> String {
        self.expression.clone()
    }
}

/// An IANA zone name → zone; the error suggests the closest name.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("\"{name}\" is not an IANA zone"))
}
