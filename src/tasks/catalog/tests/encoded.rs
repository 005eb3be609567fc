//! The answers encoded straight to JSON (`get_task`, `list_tasks`) against the value views they
//! replace on the wire: the same JSON, field for field, and no key twice.

use super::*;

/// The keys of one JSON object, in order, duplicates kept (a map would fold them).
fn object_keys(json: &[u8]) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            mut self,
            mut map: A,
        ) -> Result<Vec<String>, A::Error> {
            while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                self.0.push(k);
            }
            Ok(self.0)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    serde::Deserializer::deserialize_map(&mut de, Keys(Vec::new())).unwrap()
}

#[test]
fn get_task_encoded_is_the_value_view_field_for_field() {
    let (source, _dir) = source("encoded");
    let catalog = source.open().unwrap();
    let now = Utc::now();
    let kinds = [
        json!({"name": "cron", "type": "bash", "command": "echo \"hi\"\n", "schedule": "*/5 * * * *",
               "description": "with \u{1} and é", "env": {"A": "1"}, "pause_after_failures": 3,
               "expect": {"within": "26h"}}),
        json!({"name": "agent", "type": "subagent", "prompt": "look", "schedule": "0 9 * * 1-5",
               "timezone": "Europe/Moscow", "daily_budget_usd": 2.5}),
        json!({"name": "hook", "type": "bash", "command": "true",
               "trigger": {"type": "hook", "event": "PostToolUse", "matcher": "Edit"}}),
        json!({"name": "hook-off", "type": "bash", "command": "true", "enabled": false,
               "trigger": {"type": "interval", "every": "15m"}}),
        json!({"name": "hooked", "type": "bash", "command": "true", "trigger": {"type": "webhook"}}),
        json!({"name": "mcp", "type": "subagent", "prompt": "p", "trigger": {"type": "manual"},
               "mcp_config": {"mcpServers": {"s": {"type": "http", "url": "https://example.com/mcp",
                                                    "headers": {"Authorization": "Bearer secret"}}}}}),
    ];
    for args in kinds {
        let name = args["name"].as_str().unwrap().to_string();
        catalog
            .add(&args, now)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let id = catalog.resolve(&name).unwrap().id;
        let run = crate::store::NewRun {
            error: Some("e \"x\""),
            ..crate::store::NewRun::manual(&id, RunStatus::Skipped, now)
        };
        catalog.store.insert_run(&run).unwrap();
        let value = catalog.get(&name, now).unwrap();
        let encoded = catalog.get_encoded(&name, now).unwrap();
        let decoded: Value = serde_json::from_slice(&encoded.json).unwrap();
        assert_eq!(decoded, value, "{name}");
        let inner = serde_json::to_vec(&decoded["task"]).unwrap();
        let mut keys = object_keys(&encoded.json[b"{\"task\":".len()..encoded.json.len() - 1]);
        assert_eq!(
            keys.len(),
            object_keys(&inner).len(),
            "{name}: no key twice"
        );
        keys.sort();
        keys.dedup();
        assert_eq!(
            keys.len(),
            value["task"].as_object().unwrap().len(),
            "{name}"
        );
        // The brief holds the summary's fields as the view has them.
        for (key, shown) in encoded.brief["task"].as_object().unwrap() {
            let full = &value["task"][key];
            if key == "next_runs" {
                assert_eq!(
                    shown.as_array().unwrap().first(),
                    full.as_array().unwrap().first()
                );
            } else {
                assert_eq!(shown, full, "{name}: {key}");
            }
        }
        // Every key the view adds after the definition is in the brief, but last_runs.
        let definition = serde_json::to_value(&catalog.resolve(&name).unwrap().spec).unwrap();
        for key in value["task"].as_object().unwrap().keys() {
            let added = definition.get(key).is_none()
                && !["created_at", "updated_at", "last_runs"].contains(&key.as_str());
            if added || ["name", "id", "type", "enabled"].contains(&key.as_str()) {
                assert!(
                    encoded.brief["task"].get(key).is_some(),
                    "{name}: brief has {key}"
                );
            }
        }
        if name == "mcp" {
            assert!(!String::from_utf8_lossy(&encoded.json).contains("secret"));
        }
    }
}

#[test]
fn list_tasks_encoded_is_the_value_page_on_every_page() {
    let (source, _dir) = source("list-encoded");
    let catalog = source.open().unwrap();
    let now = Utc::now();
    let mut ids = Vec::new();
    for i in 0..12 {
        let added = catalog.add(&task_args(i), now).unwrap();
        ids.push(added["task"]["id"].as_str().unwrap().to_string());
    }
    // A last run on some rows, one disabled task paused for its failures ("with \"quotes\"").
    for id in ids.iter().step_by(3) {
        let run = crate::store::NewRun::manual(id, RunStatus::Skipped, now);
        catalog.store.insert_run(&run).unwrap();
    }
    catalog.toggle(&ids[4], false, now).unwrap();
    catalog.store.count_failure(&ids[4], true).unwrap();
    catalog
        .store
        .set_paused_reason(&ids[4], "3 failed \"runs\"", now)
        .unwrap();
    let queries = [
        ListQuery {
            limit: 5,
            ..ListQuery::default()
        },
        ListQuery {
            enabled: Some(false),
            ..ListQuery::default()
        },
        ListQuery {
            name_contains: Some("0000".into()),
            limit: 1,
            ..ListQuery::default()
        },
    ];
    let mut seen_paused = false;
    for query in queries {
        let mut query = query;
        loop {
            let value = catalog.list(&query, now).unwrap();
            let encoded = catalog.list_encoded(&query, now).unwrap();
            let decoded: Value = serde_json::from_slice(&encoded.json).unwrap();
            assert_eq!(decoded, value, "{query:?}");
            for row in value["tasks"].as_array().unwrap() {
                seen_paused |= row["paused_reason"] == "3 failed \"runs\"";
                assert!(
                    row.get("next_run").is_some() && row.get("last_run").is_some(),
                    "{row}"
                );
            }
            for key in ["count", "total", "next_cursor"] {
                assert_eq!(encoded.brief.get(key), value.get(key), "{key}");
            }
            match value["next_cursor"].as_str() {
                Some(cursor) => query.cursor = Some(cursor.to_string()),
                None => break,
            }
        }
    }
    assert!(seen_paused, "the paused row was listed");
}
