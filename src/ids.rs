//! Random identifiers and secrets from the kernel's CSPRNG (getrandom(2)): task ids, session ids,
//! bearer tokens. Never falls back to a weak generator: if the kernel cannot give entropy, it fails.

use std::io;

/// Fill `buf` with cryptographically secure random bytes.
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    crate::sys::getrandom(buf)
}

/// Lower-case hex of `n` random bytes (2n characters).
pub fn random_hex(n: usize) -> io::Result<String> {
    let mut buf = vec![0u8; n];
    fill_random(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

const ID_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A short URL-safe id: 12 characters of a 32-letter alphabet without look-alikes (60 bits).
pub fn task_id() -> io::Result<String> {
    let mut buf = [0u8; 12];
    fill_random(&mut buf)?;
    Ok(buf
        .iter()
        .map(|b| ID_ALPHABET[(*b & 31) as usize] as char)
        .collect())
}

/// A session id: 32 hex characters (128 bits), visible ASCII only as MCP requires.
pub fn session_id() -> io::Result<String> {
    random_hex(16)
}

/// A bearer token: 64 hex characters (256 bits).
pub fn bearer_token() -> io::Result<String> {
    random_hex(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_promised_shape_and_differ() {
        let a = task_id().unwrap();
        let b = task_id().unwrap();
        assert_eq!(a.len(), 12);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| ID_ALPHABET.contains(&c)));
        let s = session_id().unwrap();
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|c| (0x21..=0x7e).contains(&c)));
        assert_eq!(bearer_token().unwrap().len(), 64);
    }
}
