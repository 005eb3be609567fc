//! docs/API.md must match the server's own tool definitions (regenerate with
//! `cargo run -- api-docs > docs/API.md`).

#[test]
fn docs_api_md_matches_the_tool_definitions() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md");
    let committed = std::fs::read_to_string(path).expect("docs/API.md exists");
    let generated = claudecron::cli::api_docs::render();
    assert!(
        committed == generated,
        "docs/API.md is out of date with the tool definitions; run: cargo run -- api-docs > docs/API.md"
    );
    for tool in claudecron::mcp::tools::definitions() {
        let name = tool["name"].as_str().unwrap();
        assert!(
            committed.contains(&format!("## `{name}`")),
            "{name} is documented"
        );
    }
}
