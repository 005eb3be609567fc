//! Crontab parsing, line by line: environment lines, CRON_TZ, macros, `%`, the day rule,
//! @reboot and bad lines reported, names from commands.

use super::*;

fn now() -> DateTime<Utc> {
    "2026-11-28T12:00:00Z".parse().expect("time")
}

fn parse_text(text: &str) -> Parsed {
    parse(text, Some("UTC"), &HashSet::new(), false, now())
}

#[test]
fn a_crontab_with_everything_in_it() {
    let text = "\
# m h dom mon dow command
SHELL=/bin/sh
MAILTO=ops@example.com
PATH = \"/usr/local/bin:/usr/bin:/bin\"

# Nightly backup of the app
30 2 * * * /opt/scripts/backup.sh --full
CRON_TZ=Europe/Berlin
0 9 1 * mon certbot renew -q
@daily /opt/scripts/backup.sh --incremental
@reboot /usr/local/bin/start-agent
-*/15 * * * * cd /srv/app && python3 bin/report.py %line one%line two
0 0 * * * echo 50\\% done
";
    let p = parse_text(text);
    let names: Vec<&str> = p.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        ["backup", "certbot-renew", "backup-2", "report", "echo"]
    );
    let backup = &p.jobs[0];
    assert_eq!(backup.line, 7);
    assert_eq!(backup.schedule, "30 2 * * *");
    assert_eq!(backup.timezone.as_deref(), Some("UTC"));
    assert_eq!(
        backup.description.as_deref(),
        Some("Nightly backup of the app")
    );
    assert_eq!(
        backup.env.get("PATH").map(String::as_str),
        Some("/usr/local/bin:/usr/bin:/bin")
    );
    assert!(!backup.env.contains_key("MAILTO") && !backup.env.contains_key("SHELL"));
    assert_eq!(p.jobs[1].timezone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(p.jobs[1].schedule, "0 9 1 * mon");
    assert_eq!(p.jobs[2].schedule, "@daily");
    assert_eq!(
        p.jobs[3].command,
        "printf '%s' 'line one\nline two' | { cd /srv/app && python3 bin/report.py \n}"
    );
    assert_eq!(p.jobs[3].schedule, "*/15 * * * *");
    assert_eq!(p.jobs[4].command, "echo 50% done");
    assert_eq!(p.skipped.len(), 1);
    assert_eq!(p.skipped[0].line, 11);
    assert!(p.skipped[0].reason.contains("@reboot is not importable"));
    assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
    assert!(p.notes[0].reason.starts_with("MAILTO is not carried over"));
}

#[test]
fn the_day_rule_where_cronie_and_claudecron_differ_is_refused() {
    let p = parse_text("0 9 */2 * 1 a\n0 9 1,15 * */2 b\n0 9 1 * 1 c\n0 9 */2 * * d\n");
    let lines: Vec<usize> = p.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, [1, 2]);
    assert!(p.skipped[0].reason.contains("AND"));
    let ok: Vec<&str> = p.jobs.iter().map(|j| j.schedule.as_str()).collect();
    assert_eq!(ok, ["0 9 1 * 1", "0 9 */2 * *"]);
}

#[test]
fn bad_lines_are_reported_with_the_reason() {
    let p = parse_text("CRON_TZ=Mars/Olympus\n61 * * * * x\n0 9 * *\n@every 5m x\n0 0 * * *\n");
    assert_eq!(p.jobs.len(), 0);
    let lines: Vec<usize> = p.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, [1, 2, 3, 4, 5]);
    assert!(p.skipped[0].reason.contains("CRON_TZ"));
    assert!(
        p.skipped[1].reason.contains("61"),
        "{}",
        p.skipped[1].reason
    );
    assert!(p.skipped[2].reason.contains("5 time fields"));
    assert!(p.skipped[3].reason.contains("not a cron macro"));
    assert!(p.skipped[4].reason.contains("no command"));
}

#[test]
fn a_system_crontab_drops_the_user_field_and_shell_wraps() {
    let p = parse(
        "SHELL=/bin/bash\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
        None,
        &HashSet::new(),
        true,
        now(),
    );
    assert_eq!(p.jobs.len(), 1, "{:?}", p.skipped);
    let job = &p.jobs[0];
    assert_eq!(job.name, "run-parts");
    assert_eq!(job.timezone, None);
    assert_eq!(
        job.command,
        "/bin/bash -c 'cd / && run-parts --report /etc/cron.hourly'"
    );
    assert!(p.notes[0].reason.contains("SHELL=/bin/bash"));
}

#[test]
fn names_come_from_the_command_and_stay_unique() {
    assert_eq!(derive_name("/usr/bin/certbot renew -q"), "certbot-renew");
    assert_eq!(derive_name("cd /srv && python3 bin/report.py"), "report");
    assert_eq!(
        derive_name("nice -n 10 timeout 30 /opt/x/sync-data.sh"),
        "sync-data"
    );
    assert_eq!(
        derive_name("FOO=1 flock /tmp/l /usr/bin/rsync -a a b"),
        "rsync"
    );
    assert_eq!(derive_name("docker system prune -f"), "docker-system");
    assert_eq!(derive_name("/"), "job");
    let mut taken: HashSet<String> = ["backup".to_string()].into();
    assert_eq!(unique_name("backup", &mut taken), "backup-2");
    assert_eq!(unique_name("backup", &mut taken), "backup-3");
    let p = parse(
        "0 * * * * backup.sh\n",
        None,
        &["backup".to_string()].into(),
        false,
        now(),
    );
    assert_eq!(p.jobs[0].name, "backup-2");
}

#[test]
fn add_task_arguments() {
    let p = parse_text("FOO=bar\n# hi\n0 9 * * * echo x\n");
    let args = p.jobs[0].add_task_args(false);
    assert_eq!(args["type"], "bash");
    assert_eq!(args["enabled"], false);
    assert_eq!(args["env"]["FOO"], "bar");
    assert_eq!(args["timezone"], "UTC");
    assert_eq!(args["description"], "hi (imported from crontab line 3)");
}
