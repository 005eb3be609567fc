//! Small helpers with no state and no I/O, shared across layers: RFC 3339 time text, cutting
//! text at a character boundary, edit distance for did-you-mean hints, and the one path-glob
//! rule used by file-watch patterns and hook file patterns, base64url, JSON written into a byte
//! buffer, and the `obj!` macro. It
//! depends on nothing in the crate.

use chrono::{DateTime, SecondsFormat, Utc};
use std::path::Path;

/// A JSON object from `"key": value` pairs, each value moved in with `Value::from`. Use it
/// where a value is itself a `Value` (or holds some): `serde_json::json!` copies every embedded
/// `Value` through a full serialization and drops the original — measured at about a third of
/// the server's CPU for a `get_task`.
#[macro_export]
macro_rules! obj {
    ($($key:literal : $value:expr),* $(,)?) => {{
        let mut map = serde_json::Map::new();
        $( map.insert($key.into(), serde_json::Value::from($value)); )*
        serde_json::Value::Object(map)
    }};
}

/// RFC 3339 in UTC with second precision (`2026-11-28T09:00:00Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    rfc3339_fast(t, None, false).unwrap_or_else(|| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// RFC 3339 in UTC with milliseconds (`2026-11-28T09:00:00.123Z`).
pub fn rfc3339_millis(t: DateTime<Utc>) -> String {
    rfc3339_fast(t, None, true).unwrap_or_else(|| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// RFC 3339 of `t` in `tz`, to the second, with the zone's offset (`2026-11-28T12:00:00+03:00`;
/// `+00:00`, never `Z`).
pub fn rfc3339_in(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    use chrono::{Offset, TimeZone};
    let offset = tz
        .offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc();
    rfc3339_fast(t, Some(offset), false).unwrap_or_else(|| {
        t.with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    })
}

/// The text chrono's `to_rfc3339_opts` writes (seconds or milliseconds; `Z`, or the offset
/// `±HH:MM` when one is given), without its formatting machinery (a sixth of a `get_task`'s
/// instructions went to it). None for what chrono writes differently: a year outside
/// 0000-9999, a leap second, an offset that is not whole minutes.
fn rfc3339_fast(t: DateTime<Utc>, offset: Option<i32>, millis: bool) -> Option<String> {
    let nanos = t.timestamp_subsec_nanos();
    let offset_secs = offset.unwrap_or(0);
    if nanos >= 1_000_000_000 || offset_secs % 60 != 0 {
        return None;
    }
    let secs = t.timestamp().checked_add(i64::from(offset_secs))?;
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut buf = *b"0000-00-00T00:00:00.000+00:00";
    let two = |buf: &mut [u8; 29], at: usize, v: u32| {
        buf[at] = b'0' + (v / 10) as u8;
        buf[at + 1] = b'0' + (v % 10) as u8;
    };
    let year = year as u32;
    two(&mut buf, 0, year / 100);
    two(&mut buf, 2, year % 100);
    two(&mut buf, 5, month);
    two(&mut buf, 8, day);
    two(&mut buf, 11, of_day / 3600);
    two(&mut buf, 14, of_day / 60 % 60);
    two(&mut buf, 17, of_day % 60);
    let mut end = 19;
    if millis {
        let ms = nanos / 1_000_000;
        buf[20] = b'0' + (ms / 100) as u8;
        two(&mut buf, 21, ms % 100);
        end = 23;
    }
    match offset {
        None => {
            buf[end] = b'Z';
            end += 1;
        }
        Some(secs) => {
            buf[end] = if secs < 0 { b'-' } else { b'+' };
            let minutes = secs.unsigned_abs() / 60;
            two(&mut buf, end + 1, minutes / 60);
            buf[end + 3] = b':';
            two(&mut buf, end + 4, minutes % 60);
            end += 6;
        }
    }
    std::str::from_utf8(&buf[..end]).ok().map(String::from)
}

/// RFC 3339 in UTC, to the millisecond when the time has a fraction, else to the second (how
/// stored times are shown).
pub fn rfc3339_auto(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_nanos() == 0 {
        rfc3339(t)
    } else {
        rfc3339_millis(t)
    }
}

/// serde: an optional time as `rfc3339_auto` text or null.
pub fn serialize_time_opt<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339_auto(*t)),
        None => s.serialize_none(),
    }
}

/// serde: an optional time as `rfc3339_millis` text or null.
pub fn serialize_time_millis_opt<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339_millis(*t)),
        None => s.serialize_none(),
    }
}

/// serde: a time as `rfc3339_millis` text.
pub fn serialize_time_millis<S: serde::Serializer>(
    t: &DateTime<Utc>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_millis(*t))
}

/// An RFC 3339 time (any offset) as UTC.
pub fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The last `n` bytes of `text`, cut at a character boundary.
pub fn tail(text: &str, n: usize) -> &str {
    if text.len() <= n {
        return text;
    }
    let mut start = text.len() - n;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// At most `n` bytes of the start of `text`, cut at a character boundary.
pub fn head(text: &str, n: usize) -> &str {
    if text.len() <= n {
        return text;
    }
    let mut end = n;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Levenshtein distance over characters (for did-you-mean hints).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// A path glob, the one rule for file-watch `pattern` and hook `file_pattern`: `*` does not
/// cross `/`, `**` does; a pattern with a `/` is matched against the path (with or without its
/// leading `/`), any other against the file name.
#[derive(Debug, Clone)]
pub struct PathGlob {
    matcher: globset::GlobMatcher,
    whole_path: bool,
}

impl PathGlob {
    pub fn new(pattern: &str) -> Result<PathGlob, String> {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| e.kind().to_string())?;
        Ok(PathGlob {
            matcher: glob.compile_matcher(),
            whole_path: pattern.contains('/'),
        })
    }

    pub fn is_match(&self, path: &Path) -> bool {
        if self.whole_path {
            self.matcher.is_match(path)
                || path
                    .strip_prefix("/")
                    .is_ok_and(|rel| self.matcher.is_match(rel))
        } else {
            path.file_name().is_some_and(|n| self.matcher.is_match(n))
        }
    }
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (RFC 4648 §5): list cursors, PKCE S256 challenges.
pub fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(BASE64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Base64 decoded, standard or URL alphabet, padding optional (an `Authorization: Basic`
/// value, a list cursor); None for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let text = text.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// `value` as JSON at the end of `out`, through a writer that pushes serde_json's short writes
/// (its punctuation and quotes, a byte or two each: most of its writes) byte by byte instead of
/// through a copy call.
pub fn json_into<T: serde::Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> serde_json::Result<()> {
    serde_json::to_writer(JsonSink(out), value)
}

/// A `Vec` as serde_json's writer (see [`json_into`]).
struct JsonSink<'a>(&'a mut Vec<u8>);

impl std::io::Write for JsonSink<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.write_all(bytes)?;
        Ok(bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.len() <= 4 {
            for &b in bytes {
                self.0.push(b);
            }
        } else {
            self.0.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A unit test's own empty directory under the system's temp dir (`cc-TAG-PID`, emptied first,
/// so a run after a failed one starts clean), removed when the test ends.
#[cfg(test)]
pub(crate) struct TestDir(std::path::PathBuf);

#[cfg(test)]
impl TestDir {
    pub(crate) fn new(tag: &str) -> TestDir {
        let dir = std::env::temp_dir().join(format!("cc-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a test directory");
        TestDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

#[cfg(test)]
impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_text_is_chronos_for_every_zone_and_precision() {
        use chrono::TimeZone;
        let zones = [
            chrono_tz::UTC,
            chrono_tz::Europe::Moscow,
            chrono_tz::America::St_Johns,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::Asia::Kolkata,
            chrono_tz::Pacific::Chatham,
            chrono_tz::America::Los_Angeles,
            chrono_tz::Africa::Monrovia,
            chrono_tz::Pacific::Kiritimati,
        ];
        let mut seconds = -62_135_596_800i64; // 0001-01-01
        let mut cases = 0;
        while seconds < 253_402_300_799 {
            for nanos in [0, 1, 999_999, 1_000_000, 123_456_789, 999_999_999] {
                let t = Utc.timestamp_opt(seconds, nanos).unwrap();
                assert_eq!(rfc3339(t), t.to_rfc3339_opts(SecondsFormat::Secs, true));
                assert_eq!(
                    rfc3339_millis(t),
                    t.to_rfc3339_opts(SecondsFormat::Millis, true)
                );
                for tz in zones {
                    assert_eq!(
                        rfc3339_in(t, tz),
                        t.with_timezone(&tz)
                            .to_rfc3339_opts(SecondsFormat::Secs, false),
                        "{t} in {tz}"
                    );
                }
                cases += 1;
            }
            seconds += 7_777_777; // about three months, every time of day in turn
        }
        assert!(cases > 6000);
        // Around now, an hour at a time across the DST changes.
        for h in 0..24 * 400 {
            let t = Utc.timestamp_opt(1_767_225_600 + h * 3600 + 17, 0).unwrap();
            for tz in zones {
                assert_eq!(
                    rfc3339_in(t, tz),
                    t.with_timezone(&tz)
                        .to_rfc3339_opts(SecondsFormat::Secs, false)
                );
            }
        }
    }

    #[test]
    fn text_is_cut_at_character_boundaries() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(head("héllo", 2), "h");
        assert_eq!(head("abc", 10), "abc");
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn globs_match_names_or_whole_paths() {
        let g = |p: &str, path: &str| PathGlob::new(p).unwrap().is_match(Path::new(path));
        assert!(g("*.rs", "/home/dev/proj/src/main.rs"));
        assert!(!g("*.rs", "/home/dev/proj/README.md"));
        assert!(g("**/src/*.rs", "/home/dev/proj/src/main.rs"));
        assert!(!g("/etc/*.conf", "/etc/nginx/nginx.conf"));
        assert!(g("/etc/**/*.conf", "/etc/nginx/nginx.conf"));
        assert!(
            g("sites/*.conf", "sites/a.conf"),
            "relative to a watched dir"
        );
        assert!(!g("sites/*.conf", "sites/x/a.conf"));
        assert!(PathGlob::new("a[").is_err());
    }
}
