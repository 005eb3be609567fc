//! Unit tests of the parent module.

use super::*;

fn armed(json: Value) -> Armed {
    let trigger: Trigger = serde_json::from_value(json).expect("trigger");
    match Armed::new("t", &trigger) {
        Some(Ok(a)) => a,
        _ => panic!("not armable"),
    }
}

fn with_kind(mut a: Armed, kind: Kind) -> Armed {
    a.resolved = Some(Resolved {
        kind,
        wants: Vec::new(),
        alias: None,
    });
    a
}

fn fw(path: &str, pattern: Option<&str>, recursive: bool) -> Value {
    let mut t = json!({"type": "file-watch", "path": path, "recursive": recursive,
        "events": ["create", "modify", "remove"], "debounce_ms": 100});
    if let Some(p) = pattern {
        t["pattern"] = json!(p);
    }
    t
}

#[test]
fn normalize_is_lexical() {
    assert_eq!(normalize("/a/./b//c/"), PathBuf::from("/a/b/c"));
    assert_eq!(normalize("/a/../b"), PathBuf::from("/a/../b"));
}

#[test]
fn file_target_matches_only_itself() {
    let a = with_kind(armed(fw("/etc/nginx/nginx.conf", None, true)), Kind::File);
    assert!(a.matches(Path::new("/etc/nginx/nginx.conf")));
    assert!(!a.matches(Path::new("/etc/nginx/nginx.conf.swp")));
    assert!(!a.matches(Path::new("/etc/nginx/mime.types")));
    // The pattern is not used for a file target.
    let a = with_kind(
        armed(fw("/etc/nginx/nginx.conf", Some("*.py"), true)),
        Kind::File,
    );
    assert!(a.matches(Path::new("/etc/nginx/nginx.conf")));
}

#[test]
fn directory_target_recursive_and_not() {
    let rec = with_kind(armed(fw("/srv/d", None, true)), Kind::Dir);
    let flat = with_kind(armed(fw("/srv/d", None, false)), Kind::Dir);
    for a in [&rec, &flat] {
        assert!(a.matches(Path::new("/srv/d/x")));
        assert!(a.matches(Path::new("/srv/d")));
        assert!(!a.matches(Path::new("/srv/dd/x")));
        assert!(!a.matches(Path::new("/srv")));
    }
    assert!(rec.matches(Path::new("/srv/d/sub/x")));
    assert!(!flat.matches(Path::new("/srv/d/sub/x")));
}

#[test]
fn pattern_name_or_relative_path() {
    let name = with_kind(armed(fw("/srv/d", Some("*.conf"), true)), Kind::Dir);
    assert!(name.matches(Path::new("/srv/d/a.conf")));
    assert!(name.matches(Path::new("/srv/d/sites/b.conf")));
    assert!(!name.matches(Path::new("/srv/d/a.txt")));
    // With a pattern the directory itself does not count.
    assert!(!name.matches(Path::new("/srv/d")));
    let rel = with_kind(armed(fw("/srv/d", Some("sites/*.conf"), true)), Kind::Dir);
    assert!(rel.matches(Path::new("/srv/d/sites/b.conf")));
    assert!(!rel.matches(Path::new("/srv/d/b.conf")));
    assert!(!rel.matches(Path::new("/srv/d/sites/x/b.conf")));
    let deep = with_kind(armed(fw("/srv/d", Some("**/*.py"), true)), Kind::Dir);
    assert!(deep.matches(Path::new("/srv/d/a/b/c.py")));
    assert!(deep.matches(Path::new("/srv/d/c.py")));
}

#[test]
fn renames_are_create_and_remove_and_reads_never_count() {
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, MetadataKind};
    let a = PathBuf::from("/d/a");
    let b = PathBuf::from("/d/b");
    let both = vec![a.clone(), b.clone()];
    assert_eq!(
        classify(
            &EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &both
        ),
        vec![
            (a.clone(), FileEvent::Remove),
            (b.clone(), FileEvent::Create)
        ]
    );
    let one = vec![a.clone()];
    assert_eq!(
        classify(&EventKind::Modify(ModifyKind::Name(RenameMode::To)), &one),
        vec![(a.clone(), FileEvent::Create)]
    );
    assert_eq!(
        classify(&EventKind::Modify(ModifyKind::Name(RenameMode::From)), &one),
        vec![(a.clone(), FileEvent::Remove)]
    );
    assert_eq!(
        classify(&EventKind::Modify(ModifyKind::Data(DataChange::Any)), &one),
        vec![(a.clone(), FileEvent::Modify)]
    );
    assert_eq!(
        classify(
            &EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
            &one
        ),
        vec![(a.clone(), FileEvent::Modify)]
    );
    assert_eq!(
        classify(&EventKind::Create(CreateKind::File), &one),
        vec![(a.clone(), FileEvent::Create)]
    );
    assert!(classify(
        &EventKind::Access(AccessKind::Close(AccessMode::Write)),
        &one
    )
    .is_empty());
    assert!(classify(&EventKind::Other, &[]).is_empty());
}

#[test]
fn desired_set_merges_and_recursive_wins() {
    let d = desired_set(
        vec![
            (PathBuf::from("/a"), false),
            (PathBuf::from("/a"), true),
            (PathBuf::from("/a/b"), false),
            (PathBuf::from("/ab"), false),
            (PathBuf::from("/c/d"), false),
            (PathBuf::from("/c"), false),
        ]
        .into_iter(),
    );
    let want: BTreeMap<PathBuf, bool> =
        [("/a", true), ("/ab", false), ("/c", false), ("/c/d", false)]
            .into_iter()
            .map(|(p, r)| (PathBuf::from(p), r))
            .collect();
    assert_eq!(d, want);
    assert_eq!(root_of(&d, Path::new("/a/b")), Some(&PathBuf::from("/a")));
    assert_eq!(root_of(&d, Path::new("/c/d")), Some(&PathBuf::from("/c/d")));
    assert_eq!(root_of(&d, Path::new("/c/e")), None);
}

#[test]
fn resolve_file_dir_and_missing() {
    let base = std::env::temp_dir().join(format!("cc-watch-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("dir")).expect("mkdir");
    std::fs::write(base.join("f"), "x").expect("write");
    let r = resolve(&base.join("f"), true);
    assert_eq!(r.kind, Kind::File);
    assert_eq!(r.wants, vec![(base.clone(), false)]);
    let r = resolve(&base.join("dir"), true);
    assert_eq!(r.kind, Kind::Dir);
    assert_eq!(r.wants, vec![(base.join("dir"), true)]);
    let r = resolve(&base.join("dir/x/y/z"), false);
    assert_eq!(r.kind, Kind::Missing);
    assert_eq!(r.wants, vec![(base.join("dir"), false)]);
    // A symlink to a file elsewhere: both directories, the real file as alias.
    std::fs::create_dir_all(base.join("real")).expect("mkdir");
    std::fs::write(base.join("real/conf"), "x").expect("write");
    std::os::unix::fs::symlink(base.join("real/conf"), base.join("dir/link")).expect("ln");
    let r = resolve(&base.join("dir/link"), true);
    assert_eq!(r.kind, Kind::File);
    assert_eq!(
        r.wants,
        vec![(base.join("dir"), false), (base.join("real"), false)]
    );
    assert_eq!(r.alias, Some(base.join("real/conf")));
    // A symlink to a sibling: one directory, the sibling as alias.
    std::fs::write(base.join("dir/conf.real"), "x").expect("write");
    std::os::unix::fs::symlink("conf.real", base.join("dir/conf")).expect("ln");
    let r = resolve(&base.join("dir/conf"), true);
    assert_eq!(r.wants, vec![(base.join("dir"), false)]);
    assert_eq!(r.alias, Some(base.join("dir/conf.real")));
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn batch_keeps_distinct_paths_and_the_last_event() {
    let mut b = Batch::new(Path::new("/d/a"), FileEvent::Create);
    b.push(Path::new("/d/b"), FileEvent::Modify);
    b.push(Path::new("/d/a"), FileEvent::Remove);
    let ctx: Value = serde_json::to_value(b.context()).expect("json");
    assert_eq!(ctx["env"]["CLAUDECRON_FILE_PATH"], "/d/a");
    assert_eq!(ctx["env"]["CLAUDECRON_FILE_PATHS"], "/d/a\n/d/b");
    assert_eq!(ctx["env"]["CLAUDECRON_FILE_EVENT"], "remove");
    assert!(ctx["env"].get("CLAUDECRON_FILE_PATHS_TRUNCATED").is_none());
    for i in 0..(MAX_BATCH_PATHS + 10) {
        b.push(Path::new(&format!("/d/many/{i}")), FileEvent::Create);
    }
    assert_eq!(b.paths.len(), MAX_BATCH_PATHS);
    let ctx: Value = serde_json::to_value(b.context()).expect("json");
    assert_eq!(ctx["env"]["CLAUDECRON_FILE_PATHS_TRUNCATED"], "1");
}

#[test]
fn error_messages_name_the_limit_and_the_directory() {
    let limit = notify::Error::new(notify::ErrorKind::MaxFilesWatch);
    let msg = watch_error_message(Path::new("/srv/big"), &limit);
    assert!(msg.contains("/srv/big") && msg.contains("fs.inotify.max_user_watches"));
    let denied = notify::Error::io(std::io::Error::from_raw_os_error(libc::EACCES))
        .add_path(PathBuf::from("/srv/big/private"));
    let msg = watch_error_message(Path::new("/srv/big"), &denied);
    assert!(msg.contains("permission denied") && msg.contains("/srv/big/private"));
}
