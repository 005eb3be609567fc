//! Cron expressions as sets of values per field, re-written for other schedulers: systemd
//! OnCalendar= values (two for the day-of-month/day-of-week OR rule; `L`, `5L`, `5#2` in
//! systemd's own forms) and a plain 5-field form every cron dialect reads alike. Anything it
//! cannot carry over is an error naming what and why. Pure.

use std::collections::BTreeSet;

// ---------------------------------------------------------------------------------------------

/// One field: its values, whether it was written `*`/`?` (for the day rule), and a special form.
#[derive(Debug, Clone, PartialEq)]
struct Field {
    values: BTreeSet<u32>,
    star: bool,
    special: Option<Special>,
}

#[derive(Debug, Clone, PartialEq)]
enum Special {
    /// `L` in day-of-month.
    LastDay,
    /// `5L`: the last such weekday of the month.
    LastWeekday(u32),
    /// `5#2`: the n-th such weekday.
    Nth(u32, u32),
    /// `LW`, `15W` and the like: no target has them.
    Other(String),
}

/// A cron expression split into seconds, minute, hour, day-of-month, month, day-of-week, year.
#[derive(Debug)]
pub struct Cron {
    sec: Field,
    min: Field,
    hour: Field,
    dom: Field,
    month: Field,
    dow: Field,
    year: Option<String>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, String> {
        let expanded = match expr.trim().to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
            "@monthly" => "0 0 1 * *".into(),
            "@weekly" => "0 0 * * 0".into(),
            "@daily" | "@midnight" => "0 0 * * *".into(),
            "@hourly" => "0 * * * *".into(),
            _ => expr.to_string(),
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest, year) = match f.len() {
            5 => ("0", &f[..], None),
            6 => (f[0], &f[1..], None),
            7 => (f[0], &f[1..6], Some(f[6].to_string()).filter(|y| y != "*")),
            n => {
                return Err(format!(
                    "the schedule \"{expr}\" has {n} fields; expected 5, 6 or 7"
                ))
            }
        };
        Ok(Cron {
            sec: field(sec, 0, 59, &[])?,
            min: field(rest[0], 0, 59, &[])?,
            hour: field(rest[1], 0, 23, &[])?,
            dom: field(rest[2], 1, 31, &[])?,
            month: field(rest[3], 1, 12, &MONTHS)?,
            dow: field(rest[4], 0, 7, &DAYS)?,
            year,
        })
    }

    /// Both day fields restricted: a day matches if either does.
    fn or_rule(&self) -> bool {
        !self.dom.star && !self.dow.star
    }

    /// A 5-field expression every cron dialect reads alike (cronie, Kubernetes' robfig/cron):
    /// values re-written as plain lists, ranges and steps; Sunday as 0.
    pub fn five(&self, target: &str) -> Result<String, String> {
        if self.sec.values != BTreeSet::from([0]) {
            return Err(format!(
                "{target} schedules have no seconds field (this task fires at second(s) {})",
                list(&self.sec.values, "-")
            ));
        }
        if let Some(y) = &self.year {
            return Err(format!(
                "{target} schedules have no year field (this task is limited to {y})"
            ));
        }
        for f in [&self.dom, &self.dow] {
            if let Some(s) = &f.special {
                return Err(format!(
                    "{target} has no L, W or # day forms ({})",
                    describe(s)
                ));
            }
        }
        let mut dow = self.dow.clone();
        if dow.values.remove(&7) {
            dow.values.insert(0);
        }
        let day = |f: &Field| {
            if f.star {
                "*".to_string()
            } else {
                list(&f.values, "-")
            }
        };
        Ok(format!(
            "{} {} {} {} {}",
            cron_list(&self.min.values, 0, 59),
            cron_list(&self.hour.values, 0, 23),
            day(&self.dom),
            cron_list(&self.month.values, 1, 12),
            day(&dow),
        ))
    }

    /// systemd OnCalendar= values: one, or two for the day-of-month/day-of-week OR rule.
    pub fn on_calendar(&self, zone: &str) -> Result<Vec<String>, String> {
        let time = format!(
            "{}:{}:{}",
            sd_list(&self.hour.values, 0, 23),
            sd_list(&self.min.values, 0, 59),
            sd_list(&self.sec.values, 0, 59)
        );
        let year = match &self.year {
            None => "*".to_string(),
            Some(y) => y.replace('-', ".."),
        };
        let month = sd_list(&self.month.values, 1, 12);
        let all_days = Field {
            values: (1..=31).collect(),
            star: true,
            special: None,
        };
        let dom_only = |dom: &Field| -> Result<String, String> {
            let date = match &dom.special {
                None => format!("{year}-{month}-{}", sd_list(&dom.values, 1, 31)),
                Some(Special::LastDay) => format!("{year}-{month}~01"),
                Some(s) => return Err(format!("systemd calendars have no {}", describe(s))),
            };
            Ok(format!("{date} {time} {zone}"))
        };
        let dow_only = |dow: &Field| -> Result<String, String> {
            let (days, date) = match &dow.special {
                None => (
                    dow.values.iter().map(|d| *d % 7).collect::<BTreeSet<u32>>(),
                    format!("{year}-{month}-*"),
                ),
                Some(Special::Nth(d, n)) => (
                    BTreeSet::from([*d % 7]),
                    format!("{year}-{month}-{:02}..{:02}", (n - 1) * 7 + 1, n * 7),
                ),
                Some(Special::LastWeekday(d)) => {
                    (BTreeSet::from([*d % 7]), format!("{year}-{month}~07/1"))
                }
                Some(s) => return Err(format!("systemd calendars have no {}", describe(s))),
            };
            // systemd's week starts on Monday.
            let names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
            let order: Vec<u32> = days
                .iter()
                .map(|d| (d + 6) % 7)
                .collect::<BTreeSet<u32>>()
                .into_iter()
                .collect();
            let text = ranges(&order, |i| names[((i + 1) % 7) as usize].to_string(), "..");
            Ok(format!("{text} {date} {time} {zone}"))
        };
        if self.or_rule() {
            Ok(vec![dom_only(&self.dom)?, dow_only(&self.dow)?])
        } else if !self.dow.star {
            // Day-of-month is `*`: the weekdays alone.
            dow_only(&self.dow).map(|d| vec![d])
        } else if self.dom.star {
            dom_only(&all_days).map(|d| vec![d])
        } else {
            dom_only(&self.dom).map(|d| vec![d])
        }
    }
}

fn describe(s: &Special) -> String {
    match s {
        Special::LastDay => "L (last day of the month)".into(),
        Special::LastWeekday(d) => format!("{d}L (last weekday of a kind)"),
        Special::Nth(d, n) => format!("{d}#{n} (n-th weekday)"),
        Special::Other(t) => format!("\"{t}\""),
    }
}

fn value(text: &str, names: &[&str]) -> Result<u32, String> {
    if let Ok(n) = text.parse() {
        return Ok(n);
    }
    let upper = text.to_ascii_uppercase();
    names
        .iter()
        .position(|n| *n == upper)
        .map(|i| i as u32 + u32::from(names.len() == 12))
        .ok_or_else(|| format!("\"{text}\" is not a value this export understands"))
}

fn field(text: &str, min: u32, max: u32, names: &[&str]) -> Result<Field, String> {
    let star = text == "*" || text == "?";
    let mut values = BTreeSet::new();
    let mut special = None;
    for item in text.split(',') {
        let upper = item.to_ascii_uppercase();
        let is_dow = names.len() == 7;
        if upper == "L" && !is_dow && min == 1 {
            special = Some(Special::LastDay);
            continue;
        }
        if is_dow {
            if let Some((d, n)) = upper.split_once('#') {
                let n: u32 = n
                    .parse()
                    .map_err(|_| format!("\"{item}\" is not understood"))?;
                special = Some(Special::Nth(value(d, names)?, n));
                continue;
            }
            if let Some(d) = upper.strip_suffix('L').filter(|d| !d.is_empty()) {
                special = Some(Special::LastWeekday(value(d, names)?));
                continue;
            }
        }
        if min == 1 && max == 31 && (upper.contains('W') || upper.contains('L')) {
            special = Some(Special::Other(item.to_string()));
            continue;
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| format!("step \"{s}\" is not a number"))?,
            ),
            None => (item, 1),
        };
        let (lo, hi) = match range {
            "*" | "?" | "" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a, names)?, value(b, names)?),
                None if step > 1 || item.contains('/') => (value(r, names)?, max),
                None => {
                    let v = value(r, names)?;
                    (v, v)
                }
            },
        };
        if step == 0 || lo < min || hi > max || lo > hi {
            return Err(format!("\"{item}\" is out of range {min}-{max}"));
        }
        values.extend((lo..=hi).step_by(step as usize));
    }
    if special.is_some() && !values.is_empty() {
        return Err(format!(
            "\"{text}\" mixes a special day form with other values; no target has that"
        ));
    }
    Ok(Field {
        values,
        star,
        special,
    })
}

/// Consecutive runs of `items` as `a..b` (three or more) or single values, comma-separated.
fn ranges(items: &[u32], show: impl Fn(u32) -> String, to: &str) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let mut j = i;
        while j + 1 < items.len() && items[j + 1] == items[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            parts.push(format!("{}{to}{}", show(items[i]), show(items[j])));
        } else {
            parts.extend(items[i..=j].iter().map(|v| show(*v)));
        }
        i = j + 1;
    }
    parts.join(",")
}

/// A set as `first<to>last/step` when it is an even progression of three or more, else ranges.
fn list(values: &BTreeSet<u32>, to: &str) -> String {
    let v: Vec<u32> = values.iter().copied().collect();
    if v.len() >= 3 {
        let step = v[1] - v[0];
        if step > 1 && v.windows(2).all(|w| w[1] - w[0] == step) {
            return format!("{}{to}{}/{step}", v[0], v[v.len() - 1]);
        }
    }
    ranges(&v, |x| x.to_string(), to)
}

fn cron_list(values: &BTreeSet<u32>, min: u32, max: u32) -> String {
    let v: Vec<u32> = values.iter().copied().collect();
    let step = v.get(1).map(|b| b - v[0]).unwrap_or(0);
    if values.len() as u32 == max - min + 1 {
        "*".into()
    } else if v.len() >= 2
        && v[0] == min
        && step > 1
        && v.windows(2).all(|w| w[1] - w[0] == step)
        && v[v.len() - 1] + step > max
    {
        format!("*/{step}")
    } else {
        list(values, "-")
    }
}

fn sd_list(values: &BTreeSet<u32>, min: u32, max: u32) -> String {
    if values.len() as u32 == max - min + 1 {
        "*".into()
    } else {
        let text = list(values, "..");
        // Two digits, as systemd prints them.
        text.split(',')
            .map(|part| {
                part.split("..")
                    .map(|p| match p.split_once('/') {
                        Some((a, s)) => format!("{a:0>2}/{s}"),
                        None => format!("{p:0>2}"),
                    })
                    .collect::<Vec<_>>()
                    .join("..")
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}
