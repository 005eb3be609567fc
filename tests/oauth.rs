//! The OAuth 2.1 authorization server (issue 12) against the real binary: the metadata documents
//! and the 401 challenge, dynamic registration, the consent page (wrong password refused, CSRF
//! token required), the code exchange with PKCE, OAuth access tokens on `/mcp` next to the bearer
//! token (sessions bound to the grant), refresh rotation with reuse detection, the owner's
//! one-time code, `oauth revoke`, and the negative table: each refusal with its OAuth error.

mod common;

use common::{host_cli, Options, Req, Response, Server};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PUBLIC: &str = "https://cron.example.test/cron";
const RESOURCE: &str = "https://cron.example.test/cron/mcp";
const PASSWORD: &str = "correct horse battery staple";
const CALLBACK: &str = "http://127.0.0.1:43117/callback";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// `claudecron ARGS --db <the server's db>` with `stdin`; (exit code, stdout, stderr).
fn cli(server: &Server, args: &[&str], stdin: &str) -> (i32, String, String) {
    let out = host_cli(server, args, stdin.as_bytes());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The password's hash as `oauth set-password --print` makes it.
fn password_hash() -> String {
    let dir = common::TempDir::new("claudecron-oauth-hash");
    let mut child = Command::new(env!("CARGO_BIN_EXE_claudecron"))
        .args(["oauth", "set-password", "--print", "--db"])
        .arg(dir.path().join("tasks.db"))
        .env("HOME", dir.path())
        .env_remove("CLAUDECRON_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(hash.starts_with("pbkdf2-sha256$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    hash
}

fn start(extra: &[(&str, &str)]) -> Server {
    let mut options = Options::default()
        .env("CLAUDECRON_OAUTH_ENABLED", "true")
        .env("CLAUDECRON_PUBLIC_URL", PUBLIC)
        .env("CLAUDECRON_OAUTH_PASSWORD_HASH", &password_hash());
    for (k, v) in extra {
        options = options.env(k, v);
    }
    Server::start(options)
}

fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn base64(text: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                A[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            // Percent-decoding of what the server encodes (enc above).
            let bytes = v.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
                    out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        })
    })
}

fn register(server: &Server, redirect: &str, name: &str) -> Response {
    Req::post("/register")
        .header("Content-Type", "application/json")
        .json(&json!({"redirect_uris": [redirect], "client_name": name, "token_endpoint_auth_method": "none"}))
        .send(server.port)
}

fn client_id(server: &Server) -> String {
    let resp = register(server, CALLBACK, "Test client");
    assert_eq!(resp.status, 201, "{}", resp.describe());
    resp.json()["client_id"].as_str().unwrap().to_string()
}

/// `GET /authorize` with the standard parameters, `changes` replacing or adding some.
fn authorize(server: &Server, client_id: &str, changes: &[(&str, &str)]) -> Response {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("state", "st-123"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("resource", RESOURCE),
    ];
    for (k, v) in changes {
        params.retain(|(p, _)| p != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    Req::get(&format!("/authorize?{}", form(&params))).send(server.port)
}

fn csrf(page: &Response) -> String {
    let text = page.text();
    let at = text
        .find("name=\"csrf_token\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF token in {text}"));
    let rest = &text[at + "name=\"csrf_token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn submit(server: &Server, csrf: &str, password: &str, decision: &str) -> Response {
    Req::post("/authorize")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("csrf_token", csrf),
            ("password", password),
            ("decision", decision),
        ]))
        .send(server.port)
}

/// Consent with the password: the code from the redirect (checked: state and iss).
fn code(server: &Server, client_id: &str) -> String {
    let page = authorize(server, client_id, &[]);
    assert_eq!(page.status, 200, "{}", page.describe());
    let resp = submit(server, &csrf(&page), PASSWORD, "approve");
    assert_eq!(resp.status, 302, "{}", resp.describe());
    let location = resp.header("location").unwrap().to_string();
    assert!(location.starts_with(CALLBACK), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    assert_eq!(query_param(&location, "iss").as_deref(), Some(PUBLIC));
    query_param(&location, "code").expect("a code")
}

fn token(server: &Server, pairs: &[(&str, &str)]) -> Response {
    Req::post("/token")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send(server.port)
}

fn exchange(server: &Server, client_id: &str, code: &str, changes: &[(&str, &str)]) -> Response {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("client_id", client_id),
        ("code_verifier", VERIFIER),
        ("resource", RESOURCE),
    ];
    for (k, v) in changes {
        pairs.retain(|(p, _)| p != k);
        pairs.push((k, v));
    }
    token(server, &pairs)
}

fn refresh(server: &Server, client_id: &str, refresh_token: &str) -> Response {
    token(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
            ("resource", RESOURCE),
        ],
    )
}

/// The OAuth error of a refusal, after checking status and no-store.
fn oauth_error(resp: &Response, status: u16) -> String {
    assert_eq!(resp.status, status, "{}", resp.describe());
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let body = resp.json();
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body["error"].as_str().unwrap().to_string()
}

/// The tokens of a 200 token answer.
fn tokens(resp: &Response) -> (String, String) {
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert!(resp
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    let body = resp.json();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0));
    (
        body["access_token"].as_str().unwrap().to_string(),
        body["refresh_token"].as_str().unwrap().to_string(),
    )
}

fn initialize(server: &Server, bearer: &str) -> Response {
    Req::post("/mcp")
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .bearer(bearer)
        .json(&common::initialize_body("2025-11-25"))
        .send(server.port)
}

fn tools_list(server: &Server, bearer: &str, session: &str) -> Response {
    Req::post("/mcp")
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .header("Mcp-Session-Id", session)
        .bearer(bearer)
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send(server.port)
}

#[test]
fn metadata_documents_and_the_401_challenge() {
    let server = start(&[]);
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/cron/mcp",
    ] {
        let resp = Req::get(path).send(server.port);
        assert_eq!(resp.status, 200, "{}", resp.describe());
        let doc = resp.json();
        assert_eq!(doc["resource"], RESOURCE);
        assert_eq!(doc["authorization_servers"], json!([PUBLIC]));
    }
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/cron",
    ] {
        let doc = Req::get(path).send(server.port).json();
        assert_eq!(doc["issuer"], PUBLIC);
        assert_eq!(doc["authorization_endpoint"], format!("{PUBLIC}/authorize"));
        assert_eq!(doc["token_endpoint"], format!("{PUBLIC}/token"));
        assert_eq!(doc["registration_endpoint"], format!("{PUBLIC}/register"));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["client_id_metadata_document_supported"], true);
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            json!(["none"])
        );
    }
    let resp = Req::post("/mcp")
        .header("Content-Type", "application/json")
        .json(&common::initialize_body("2025-11-25"))
        .send(server.port);
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("www-authenticate"),
        Some(
            "Bearer resource_metadata=\"https://cron.example.test/cron/.well-known/oauth-protected-resource\""
        )
    );
    let resp = initialize(&server, "ccat_not-a-token");
    assert_eq!(resp.status, 401);
    assert!(resp
        .header("www-authenticate")
        .is_some_and(|h| h.contains("error=\"invalid_token\"")));
    // The bearer token still works.
    assert_eq!(initialize(&server, server.token()).status, 200);
    // The info document says where sign-in starts.
    let info = Req::get("/").send(server.port).json();
    assert_eq!(
        info["oauth"],
        "https://cron.example.test/cron/.well-known/oauth-protected-resource"
    );

    // Off by default: no OAuth paths, the plain challenge.
    let plain = Server::start_default();
    assert_eq!(
        Req::get("/.well-known/oauth-protected-resource")
            .send(plain.port)
            .status,
        404
    );
    assert_eq!(Req::post("/token").send(plain.port).status, 404);
    assert!(Req::get("/").send(plain.port).json()["oauth"].is_null());
    let resp = initialize(&plain, "wrong-token-0123456789");
    assert_eq!(
        resp.header("www-authenticate"),
        Some("Bearer realm=\"claudecron\"")
    );
}

#[test]
fn full_flow_with_refresh_rotation_reuse_detection_and_session_binding() {
    let server = start(&[]);
    let client = client_id(&server);

    // The consent page: escaped, framed by CSP; a wrong password is refused and the form stays.
    let page = authorize(&server, &client, &[]);
    assert_eq!(page.status, 200, "{}", page.describe());
    let csp = page.header("content-security-policy").unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let token_field = csrf(&page);
    let wrong = submit(&server, &token_field, "not the password", "approve");
    assert_eq!(wrong.status, 401, "{}", wrong.describe());
    assert!(wrong.text().contains("not right"));
    // A form without its CSRF token (or with a made-up one) is refused.
    let forged = submit(&server, "forged", PASSWORD, "approve");
    assert_eq!(forged.status, 400, "{}", forged.describe());
    assert!(forged.header("location").is_none());
    let resp = submit(&server, &csrf(&wrong), PASSWORD, "approve");
    assert_eq!(resp.status, 302, "{}", resp.describe());
    let code = query_param(resp.header("location").unwrap(), "code").unwrap();
    // The form is used once.
    assert_eq!(
        submit(&server, &token_field, PASSWORD, "approve").status,
        400
    );

    let (access, refresh_token) = tokens(&exchange(&server, &client, &code, &[]));
    let init = initialize(&server, &access);
    assert_eq!(init.status, 200, "{}", init.describe());
    let session = init.header("mcp-session-id").unwrap().to_string();
    let listed = tools_list(&server, &access, &session);
    assert_eq!(listed.status, 200, "{}", listed.describe());
    assert!(listed.text().contains("claudecron_list_tasks"));
    // The session belongs to the grant: the bearer token cannot use it.
    let other = tools_list(&server, server.token(), &session);
    assert_ne!(other.status, 200, "{}", other.describe());

    // Refresh rotates: a new pair, the same grant (the session still answers).
    let (access2, refresh2) = tokens(&refresh(&server, &client, &refresh_token));
    assert_ne!(access2, access);
    assert_ne!(refresh2, refresh_token);
    assert_eq!(tools_list(&server, &access2, &session).status, 200);
    // The spent refresh token comes back: refused, and the whole family is revoked.
    assert_eq!(
        oauth_error(&refresh(&server, &client, &refresh_token), 400),
        "invalid_grant"
    );
    assert_eq!(initialize(&server, &access2).status, 401);
    assert_eq!(initialize(&server, &access).status, 401);
    assert_eq!(
        oauth_error(&refresh(&server, &client, &refresh2), 400),
        "invalid_grant"
    );

    // `oauth clients` lists it; no secret reached the log.
    let (rc, out, err) = cli(&server, &["oauth", "clients", "--json"], "");
    assert_eq!(rc, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["client_id"], client.as_str());
    let log = server.stop();
    for secret in [&access, &refresh_token, &code, &token_field] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret in the log:\n{log}"
        );
    }
    assert!(!log.contains(PASSWORD));
}

#[test]
fn negative_table_each_refused_with_its_oauth_error() {
    let server = start(&[]);
    let client = client_id(&server);

    // Wrong code_verifier.
    let c = code(&server, &client);
    let wrong_verifier = "x".repeat(43);
    assert_eq!(
        oauth_error(
            &exchange(&server, &client, &c, &[("code_verifier", &wrong_verifier)]),
            400
        ),
        "invalid_grant"
    );

    // The plain method (and no PKCE at all): refused at /authorize, back to the client.
    for changes in [
        vec![("code_challenge_method", "plain")],
        vec![("code_challenge", ""), ("code_challenge_method", "")],
    ] {
        let resp = authorize(&server, &client, &changes);
        assert_eq!(resp.status, 302, "{}", resp.describe());
        let location = resp.header("location").unwrap();
        assert_eq!(
            query_param(location, "error").as_deref(),
            Some("invalid_request")
        );
        assert_eq!(query_param(location, "state").as_deref(), Some("st-123"));
    }

    // A redirect URI not allowed: at registration, and one not registered at /authorize (a
    // page, never a redirect to it).
    let resp = register(&server, "https://evil.example/callback", "Evil");
    assert_eq!(oauth_error(&resp, 400), "invalid_redirect_uri");
    let resp = authorize(
        &server,
        &client,
        &[("redirect_uri", "http://127.0.0.1:43117/other")],
    );
    assert_eq!(resp.status, 400, "{}", resp.describe());
    assert!(resp.header("location").is_none());
    // A loopback redirect URI may differ in its port only (RFC 8252 §7.3).
    let resp = authorize(
        &server,
        &client,
        &[("redirect_uri", "http://127.0.0.1:50123/callback")],
    );
    assert_eq!(resp.status, 200, "{}", resp.describe());
    // A redirect_uri at /token other than the authorization request's.
    let c = code(&server, &client);
    assert_eq!(
        oauth_error(
            &exchange(
                &server,
                &client,
                &c,
                &[("redirect_uri", "http://127.0.0.1:43117/x")]
            ),
            400
        ),
        "invalid_grant"
    );

    // A code used twice: refused, and the tokens of its first use are revoked.
    let c = code(&server, &client);
    let (access, _) = tokens(&exchange(&server, &client, &c, &[]));
    assert_eq!(initialize(&server, &access).status, 200);
    assert_eq!(
        oauth_error(&exchange(&server, &client, &c, &[]), 400),
        "invalid_grant"
    );
    assert_eq!(initialize(&server, &access).status, 401);

    // An expired code: a server whose codes live 1 s (debug builds only), and 2 s waited after
    // the code was issued (a busy host only makes it older).
    let short = start(&[("CLAUDECRON_TEST_OAUTH_CODE_SECS", "1")]);
    let short_client = client_id(&short);
    let c = code(&short, &short_client);
    let issued = Instant::now();
    while issued.elapsed() < Duration::from_millis(2100) {
        std::thread::sleep(Duration::from_millis(100)); // waiting for wall time to pass
    }
    assert_eq!(
        oauth_error(&exchange(&short, &short_client, &c, &[]), 400),
        "invalid_grant"
    );
    drop(short);

    // A token for another resource: at /token and at /authorize.
    let c = code(&server, &client);
    assert_eq!(
        oauth_error(
            &exchange(
                &server,
                &client,
                &c,
                &[("resource", "https://other.example/mcp")]
            ),
            400
        ),
        "invalid_target"
    );
    let resp = authorize(
        &server,
        &client,
        &[("resource", "https://other.example/mcp")],
    );
    assert_eq!(
        query_param(resp.header("location").unwrap(), "error").as_deref(),
        Some("invalid_target")
    );

    // A redirect URI with CR/LF (it would add headers to the redirect), a space, a quote or a
    // backslash is refused at registration: only URI characters go into a Location header.
    for bad in [
        "http://127.0.0.1:9/cb\r\nSet-Cookie: claudecron_status=attacker; Path=/",
        "http://127.0.0.1:9/cb\nX-Injected: 1",
        "http://127.0.0.1:9/c b",
        "http://127.0.0.1:9/c\"b",
        "http://127.0.0.1:9/c\\b",
        "http://127.0.0.1:9/caf\u{e9}",
    ] {
        let resp = register(&server, bad, "splitter");
        assert_eq!(oauth_error(&resp, 400), "invalid_redirect_uri", "{bad:?}");
    }
    // Percent-encoded, the same characters are ordinary URI text.
    let resp = register(&server, "http://127.0.0.1:9/cb%0d%0aX", "encoded");
    assert_eq!(resp.status, 201, "{}", resp.describe());

    // A registration over 16 KiB is not read.
    let big = Req::post("/register")
        .header("Content-Type", "application/json")
        .body(format!("{{\"client_name\": \"{}\"}}", "x".repeat(20_000)))
        .send(server.port);
    assert_eq!(big.status, 413, "{}", big.describe());

    // Unknown grant types and codes.
    assert_eq!(
        oauth_error(&token(&server, &[("grant_type", "password")]), 400),
        "unsupported_grant_type"
    );
    assert_eq!(
        oauth_error(&exchange(&server, &client, "ccac_made-up", &[]), 400),
        "invalid_grant"
    );

    // A revoked client: its tokens stop, its refresh and new codes are refused.
    let c = code(&server, &client);
    let (access, refresh_token) = tokens(&exchange(&server, &client, &c, &[]));
    let (rc, out, err) = cli(&server, &["oauth", "revoke", &client], "");
    assert_eq!(rc, 0, "{out}{err}");
    assert_eq!(initialize(&server, &access).status, 401);
    assert_eq!(
        oauth_error(&refresh(&server, &client, &refresh_token), 401),
        "invalid_client"
    );
    let resp = authorize(&server, &client, &[]);
    assert_eq!(resp.status, 400, "{}", resp.describe());
    assert!(resp.text().contains("revoked"));
    let (rc, _, _) = cli(&server, &["oauth", "revoke", "ccc_nobody"], "");
    assert_eq!(rc, 1);
}

#[test]
fn one_time_code_approves_once_and_deny_says_access_denied() {
    let server = start(&[]);
    let client = client_id(&server);
    let (rc, out, err) = cli(&server, &["oauth", "approve"], "");
    assert_eq!(rc, 0, "{err}");
    let one_time = out.trim().to_string();
    assert!(one_time.len() >= 16, "{one_time}");

    let page = authorize(&server, &client, &[]);
    let resp = submit(&server, &csrf(&page), &one_time, "approve");
    assert_eq!(resp.status, 302, "{}", resp.describe());
    let code = query_param(resp.header("location").unwrap(), "code").unwrap();
    // A client that names itself with HTTP Basic (client_secret_basic, empty secret) instead of
    // client_id in the body.
    let basic = Req::post("/token")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header(
            "Authorization",
            &format!("Basic {}", base64(&format!("{client}:"))),
        )
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ]))
        .send(server.port);
    tokens(&basic);
    // Spent: a second use is a wrong password.
    let page = authorize(&server, &client, &[]);
    assert_eq!(
        submit(&server, &csrf(&page), &one_time, "approve").status,
        401
    );

    let page = authorize(&server, &client, &[]);
    let resp = submit(&server, &csrf(&page), "", "deny");
    assert_eq!(resp.status, 302);
    let location = resp.header("location").unwrap();
    assert_eq!(
        query_param(location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(location, "iss").as_deref(), Some(PUBLIC));
}

#[test]
fn oauth_needs_public_url() {
    let dir = common::TempDir::new("claudecron-oauth-cfg");
    let out = Command::new(env!("CARGO_BIN_EXE_claudecron"))
        .args(["check", "--db"])
        .arg(dir.path().join("tasks.db"))
        .env("HOME", dir.path())
        .env("CLAUDECRON_OAUTH_ENABLED", "true")
        .env_remove("CLAUDECRON_PUBLIC_URL")
        .env_remove("CLAUDECRON_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs public_url"));
}

#[test]
fn set_password_writes_the_hash_into_the_config_file_before_its_tables() {
    let dir = common::TempDir::new("claudecron-oauth-setpw");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "port = 3011\n\n[[notify_channels]]\nname = \"ops\"\nurl = \"https://hooks.example/x\"\n",
    )
    .unwrap();
    let run = |stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_claudecron"))
            .args(["oauth", "set-password", "--config"])
            .arg(&config)
            .args(["--db"])
            .arg(dir.path().join("tasks.db"))
            .env("HOME", dir.path())
            .env_remove("CLAUDECRON_OAUTH_PASSWORD_HASH")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    // Too short: refused, nothing written.
    let out = run("short\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(!std::fs::read_to_string(&config)
        .unwrap()
        .contains("oauth_password_hash"));
    let out = run(&format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&config).unwrap();
    let at_hash = text.find("oauth_password_hash = \"pbkdf2-sha256$").unwrap();
    assert!(
        at_hash < text.find("[[notify_channels]]").unwrap(),
        "{text}"
    );
    assert!(!text.contains(PASSWORD));
    // Again: replaced, not added.
    assert!(run(&format!("{PASSWORD}\n")).status.success());
    let text = std::fs::read_to_string(&config).unwrap();
    assert_eq!(text.matches("oauth_password_hash").count(), 1, "{text}");
    let check = Command::new(env!("CARGO_BIN_EXE_claudecron"))
        .args(["check", "--config"])
        .arg(&config)
        .arg("--db")
        .arg(dir.path().join("tasks.db"))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{shown}");
    assert!(
        shown.contains("oauth_password_hash    = (set, hidden)"),
        "{shown}"
    );
}

#[test]
fn wrong_passwords_sent_at_once_are_limited_like_one_after_the_other() {
    let server = start(&[]);
    let client = client_id(&server);
    // 16 consent forms, then all 16 wrong passwords at the same moment: the limit (10 a minute
    // per address) holds; before, each attempt only looked at the budget before its (slow)
    // check and took from it after, so parallel attempts all got through.
    let forms: Vec<String> = (0..16)
        .map(|_| csrf(&authorize(&server, &client, &[])))
        .collect();
    let port = server.port;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(forms.len()));
    let began = std::time::Instant::now();
    let statuses: Vec<u16> = forms
        .into_iter()
        .map(|token| {
            let barrier = std::sync::Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                Req::post("/authorize")
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form(&[
                        ("csrf_token", &token),
                        ("password", "not the password"),
                        ("decision", "approve"),
                    ]))
                    .send(port)
                    .status
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    // The budget refills at 10 a minute: a slow host may have earned one more meanwhile.
    let refilled = (began.elapsed().as_secs_f64() * 10.0 / 60.0).floor() as usize;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + limited, 16, "{statuses:?}");
    assert!(
        (10..=10 + refilled).contains(&checked),
        "{checked} wrong passwords checked (budget 10 + {refilled} refilled): {statuses:?}"
    );
}
