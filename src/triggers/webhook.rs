//! The inbound webhook trigger's pure parts: a new URL token (32 bytes from the kernel CSPRNG,
//! 64 hex characters), the hash under which it is stored and looked up (SHA-256, so the lookup
//! is an index search on a value an attacker cannot steer, not a byte-wise compare of secrets),
//! and the run context a request body gives. It never logs or stores a token.

use crate::exec::process::env_value;
use crate::tasks::runs::RunContext;

/// The URL path prefix of webhook fires.
pub const PATH_PREFIX: &str = "/trigger/";

/// A new token: 256 bits from getrandom(2), lower-case hex.
pub fn new_token() -> std::io::Result<String> {
    crate::ids::random_hex(32)
}

/// The stored form of a token: its SHA-256, lower-case hex.
pub fn token_hash(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a path segment can be a token at all (64 lower-case hex characters); anything else
/// is answered 404 without a database read.
pub fn well_formed(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The run context of a webhook request: the body on stdin byte for byte (as UTF-8; invalid
/// bytes become U+FFFD) and in `CLAUDECRON_PAYLOAD`, cut to the environment's 16 KiB per value
/// (`process::env_value`: NUL becomes U+FFFD, a longer value ends with `…[truncated]`).
pub fn context(body: &[u8]) -> RunContext {
    let text = String::from_utf8_lossy(body).into_owned();
    RunContext {
        env: [("CLAUDECRON_PAYLOAD".to_string(), env_value(&text))]
            .into_iter()
            .collect(),
        stdin: Some(text),
        hook: None,
        after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_hashes_are_sha256() {
        let a = new_token().unwrap();
        assert!(well_formed(&a));
        assert_ne!(a, new_token().unwrap());
        assert!(!well_formed("abc"));
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
