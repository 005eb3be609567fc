//! `GET /calendar.ics?key=SECRET`: the upcoming fires of enabled cron, interval and once tasks
//! as an iCalendar feed (RFC 5545) for a calendar app. The feed has its own secret
//! (`calendar_token`), compared in constant time, so the URL a calendar app stores grants
//! nothing but this read-only view; the key travels in the query string, which is never logged.
//! It builds text only: no store access of its own (the catalog reads the tasks).

use crate::http::guard::constant_time_eq;
use crate::http::{form_field, HttpRequest, Reply};
use crate::tasks::catalog::{Catalog, UpcomingFire};
use chrono::{DateTime, Duration, Utc};

/// How far ahead the feed looks.
pub const HORIZON_DAYS: i64 = 14;
/// Events per task (an every-minute task would otherwise fill the feed).
pub const PER_TASK: usize = 100;
/// Events in all.
pub const TOTAL: usize = 2000;

/// Whether the request carries the feed's key. `None` when the feed is off (no key configured).
pub fn authorized(req: &HttpRequest, secret: Option<&str>) -> Option<bool> {
    let secret = secret?;
    let given = form_field(req.query.as_bytes(), "key").unwrap_or_default();
    Some(constant_time_eq(given.as_bytes(), secret.as_bytes()))
}

/// Text escaped for an iCalendar TEXT value.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded at 75 octets (never inside a character), ending in CRLF.
fn line(out: &mut String, content: &str) {
    let mut width = 0;
    for c in content.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The feed's text for these fires.
pub fn ics(fires: &[UpcomingFire], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(
        &mut out,
        &format!("PRODID:-//claudecron//{}//EN", env!("CARGO_PKG_VERSION")),
    );
    line(&mut out, "CALSCALE:GREGORIAN");
    line(&mut out, "X-WR-CALNAME:claudecron");
    for fire in fires {
        line(&mut out, "BEGIN:VEVENT");
        line(
            &mut out,
            &format!(
                "UID:{}-{}@claudecron",
                text(&fire.task_id),
                fire.at.timestamp()
            ),
        );
        line(&mut out, &format!("DTSTAMP:{}", stamp(now)));
        line(&mut out, &format!("DTSTART:{}", stamp(fire.at)));
        line(&mut out, "DURATION:PT1M");
        line(&mut out, &format!("SUMMARY:{}", text(&fire.task_name)));
        line(&mut out, &format!("DESCRIPTION:{}", text(&fire.trigger)));
        line(&mut out, "TRANSP:TRANSPARENT");
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
}

/// Answer an authorized request.
pub fn feed(catalog: Option<&Catalog>) -> Reply {
    let Some(catalog) = catalog else {
        return Reply::error(503, "the database is not available; see the server log");
    };
    let now = Utc::now();
    match catalog.upcoming_fires(now, now + Duration::days(HORIZON_DAYS), PER_TASK, TOTAL) {
        Ok(fires) => Reply {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "text/calendar; charset=utf-8".into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            body: ics(&fires, now).into_bytes(),
        },
        Err(e) => Reply::error(500, &format!("the feed could not be read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_lines_folded() {
        assert_eq!(text("a;b,c\\d\ne"), "a\\;b\\,c\\\\d\\ne");
        let at = DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let long = "é".repeat(60);
        let body = ics(
            &[UpcomingFire {
                task_id: "t1".into(),
                task_name: long.clone(),
                at,
                trigger: "every day, at 09:00".into(),
            }],
            at,
        );
        assert!(body.contains("DTSTART:20261201T090000Z\r\n"));
        assert!(body.contains("DESCRIPTION:every day\\, at 09:00\r\n"));
        assert!(body.lines().all(|l| l.len() <= 75), "{body}");
        let unfolded = body.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("SUMMARY:{long}\r\n")));
    }
}
