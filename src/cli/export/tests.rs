//! The renderers on fixed task views: schedules in each dialect (the OR rule, macros, L and #,
//! Sunday as 7), quoting, policies carried over or noted, and every unexpressible task listed.

use super::*;
use serde_json::json;

fn task(name: &str, schedule: &str, zone: &str) -> Value {
    json!({
        "id": "abc123", "name": name, "type": "bash", "enabled": true,
        "command": "echo \"$HOME\" 100% done", "timezone": zone,
        "trigger": {"type": "cron", "schedule": schedule},
        "trigger_summary": format!("cron \"{schedule}\""),
        "overlap": "skip", "catch_up": "skip", "effective_timeout_seconds": 300,
        "retries": {"max_attempts": 0, "backoff_seconds": 30, "doubling": true},
    })
}

fn calendars(schedule: &str) -> Vec<String> {
    Cron::parse(schedule)
        .and_then(|c| c.on_calendar("Europe/Berlin"))
        .unwrap_or_else(|e| panic!("{schedule}: {e}"))
}

#[test]
fn on_calendar_from_cron() {
    let z = "Europe/Berlin";
    assert_eq!(
        calendars("0 9 * * 1-5"),
        [format!("Mon..Fri *-*-* 09:00:00 {z}")]
    );
    assert_eq!(
        calendars("*/15 * * * *"),
        [format!("*-*-* *:00..45/15:00 {z}")]
    );
    assert_eq!(calendars("@daily"), [format!("*-*-* 00:00:00 {z}")]);
    assert_eq!(calendars("@weekly"), [format!("Sun *-*-* 00:00:00 {z}")]);
    assert_eq!(
        calendars("0 9 1 * 1"),
        [
            format!("*-*-01 09:00:00 {z}"),
            format!("Mon *-*-* 09:00:00 {z}")
        ]
    );
    assert_eq!(
        calendars("0 9 1,15 * 5,6,7"),
        [
            format!("*-*-01,15 09:00:00 {z}"),
            format!("Fri..Sun *-*-* 09:00:00 {z}")
        ]
    );
    assert_eq!(calendars("30 6 L * *"), [format!("*-*~01 06:30:00 {z}")]);
    assert_eq!(
        calendars("0 8 * * 5#2"),
        [format!("Fri *-*-08..14 08:00:00 {z}")]
    );
    assert_eq!(
        calendars("0 8 * * FRIL"),
        [format!("Fri *-*~07/1 08:00:00 {z}")]
    );
    assert_eq!(
        calendars("0 0 12 1 JUN-AUG 1"),
        [
            format!("*-06..08-01 12:00:00 {z}"),
            format!("Mon *-06..08-* 12:00:00 {z}")
        ]
    );
    assert_eq!(
        calendars("5 0 9 * * * 2027"),
        [format!("2027-*-* 09:00:05 {z}")]
    );
    assert!(Cron::parse("0 9 15W * *")
        .and_then(|c| c.on_calendar(z))
        .is_err());
}

#[test]
fn five_fields_every_dialect_reads_alike() {
    let five = |s: &str| Cron::parse(s).and_then(|c| c.five("cronie"));
    assert_eq!(five("0 9 * * 1-5").as_deref(), Ok("0 9 * * 1-5"));
    assert_eq!(five("0 9 * * 5-7").as_deref(), Ok("0 9 * * 0,5,6"));
    assert_eq!(
        five("*/20 0/6 */2 * *").as_deref(),
        Ok("*/20 */6 1-31/2 * *")
    );
    assert_eq!(
        five("0 9 1-31 * mon").as_deref(),
        Ok("0 9 1-31 * 1"),
        "a restricted day field stays restricted (OR rule)"
    );
    assert_eq!(five("@monthly").as_deref(), Ok("0 0 1 * *"));
    assert_eq!(five("0 0 1 jan-mar *").as_deref(), Ok("0 0 1 1-3 *"));
    assert!(five("30 0 9 * * *").is_err_and(|e| e.contains("seconds")));
    assert!(five("0 9 L * *").is_err_and(|e| e.contains("L, W or #")));
}

#[test]
fn systemd_units_quote_and_carry_policies() {
    let mut t = task("nightly backup", "0 2 * * *", "Europe/Berlin");
    t["catch_up"] = json!("once");
    t["cwd"] = json!("/srv/app");
    t["env"] = json!({"MODE": "full 100%"});
    let out = render(&[t], Format::Systemd, DEFAULT_IMAGE);
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    let names: Vec<&str> = out.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "claudecron-nightly-backup.service",
            "claudecron-nightly-backup.timer"
        ]
    );
    let service = &out.files[0].1;
    assert!(
        service.contains("ExecStart=/bin/sh -c \"echo \\\"$$HOME\\\" 100%% done\"\n"),
        "{service}"
    );
    assert!(service.contains("WorkingDirectory=/srv/app\n"));
    assert!(service.contains("Environment=\"MODE=full 100%%\"\n"));
    assert!(service.contains("TimeoutStartSec=300\n"));
    let timer = &out.files[1].1;
    assert!(
        timer.contains("OnCalendar=*-*-* 02:00:00 Europe/Berlin\n"),
        "{timer}"
    );
    assert!(timer.contains("Persistent=true\n"));
    assert!(timer.contains("Daylight saving"));
}

#[test]
fn kubernetes_cronjobs() {
    let mut t = task("Report_Weekly", "0 7 * * 7", "America/New_York");
    t["overlap"] = json!("allow");
    t["retries"]["max_attempts"] = json!(2);
    t["enabled"] = json!(false);
    let out = render(&[t], Format::K8s, "alpine:3.20");
    let (name, yaml) = &out.files[0];
    assert_eq!(name, "report-weekly.yaml");
    for line in [
        "  name: \"report-weekly\"\n",
        "  schedule: \"0 7 * * 0\"\n",
        "  timeZone: \"America/New_York\"\n",
        "  concurrencyPolicy: Allow\n",
        "  startingDeadlineSeconds: 10\n",
        "  suspend: true\n",
        "      backoffLimit: 2\n",
        "      activeDeadlineSeconds: 900\n",
        "              image: \"alpine:3.20\"\n",
        "              command: [\"/bin/sh\", \"-c\", \"echo \\\"$HOME\\\" 100% done\"]\n",
    ] {
        assert!(yaml.contains(line), "{line:?} in\n{yaml}");
    }
}

#[test]
fn crontab_lines() {
    let a = task("a", "0 9 * * 7", "Europe/Berlin");
    let mut b = task("b", "@hourly", "UTC");
    b["overlap"] = json!("allow");
    b["command"] = json!("date");
    let out = render(&[a, b], Format::Crontab, DEFAULT_IMAGE);
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    let text = &out.files[0].1;
    let berlin = text.find("CRON_TZ=Europe/Berlin").expect("zone line");
    let utc = text.find("CRON_TZ=UTC").expect("zone line");
    assert!(berlin < utc);
    assert!(text.contains("\n0 9 * * 0 flock -n /tmp/claudecron-a.lock timeout 300 /bin/sh -c 'echo \"$HOME\" 100\\% done'\n"), "{text}");
    assert!(
        text.contains("\n0 * * * * timeout 300 /bin/sh -c 'date'\n"),
        "{text}"
    );
}

#[test]
fn what_cannot_be_expressed_is_listed_with_the_reason() {
    let mut tasks = Vec::new();
    for (name, trigger) in [
        ("watch", json!({"type": "file-watch", "path": "/srv"})),
        ("hook", json!({"type": "hook", "event": "PostToolUse"})),
        (
            "after",
            json!({"type": "after", "task": "x", "on": "success"}),
        ),
        (
            "every",
            json!({"type": "interval", "every": "15m", "start_at": "2026-01-01T00:00:00Z"}),
        ),
        (
            "once",
            json!({"type": "once", "at": "2027-01-01T08:00:00Z"}),
        ),
        ("manual", json!({"type": "manual"})),
    ] {
        let mut t = task(name, "", "UTC");
        t["trigger"] = trigger;
        tasks.push(t);
    }
    let mut sub = task("agent", "0 9 * * *", "UTC");
    sub["type"] = json!("subagent");
    tasks.push(sub);
    let k8s = render(&tasks, Format::K8s, DEFAULT_IMAGE);
    let skipped: Vec<&str> = k8s.skipped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        skipped,
        ["watch", "hook", "after", "every", "once", "manual", "agent"]
    );
    assert!(k8s.skipped.iter().all(|(_, why)| !why.is_empty()));
    assert!(k8s.files.is_empty());
    // systemd can take the one-shot and the manual task.
    let sd = render(&tasks, Format::Systemd, DEFAULT_IMAGE);
    let skipped: Vec<&str> = sd.skipped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(skipped, ["watch", "hook", "after", "every", "agent"]);
    let names: Vec<&str> = sd.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "claudecron-once.service",
            "claudecron-once.timer",
            "claudecron-manual.service"
        ]
    );
    assert!(sd.files[1]
        .1
        .contains("OnCalendar=2027-01-01 08:00:00 UTC\n"));
    let multi = task("multi", "0 9 * * *", "UTC");
    let mut multi = multi;
    multi["command"] = json!("echo a\necho b");
    let cr = render(&[multi], Format::Crontab, DEFAULT_IMAGE);
    assert!(cr.skipped[0].1.contains("several lines"));
}
