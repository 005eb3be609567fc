//! The OAuth authorization server's rows: clients (registered or from a metadata document),
//! grants (the family of tokens one code gave), codes, access and refresh tokens, and the owner's
//! one-time approval codes — every secret as its SHA-256 (hex) only, never the secret. It records
//! and reads; the decisions are `crate::oauth`'s.

use super::*;
use crate::oauth::{CodeRecord, RefreshRecord};

/// Migration 10 (appended to `MIGRATIONS`): registered clients, grants (a code's token family),
/// codes, access and refresh tokens and the owner's one-time approval codes, each secret as its
/// SHA-256 (hex) only; times in Unix seconds.
pub(super) const MIGRATION: &str = "CREATE TABLE oauth_clients (
    client_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('registered', 'metadata')),
    created_at    INTEGER NOT NULL,
    fetched_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE TABLE oauth_grants (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id  TEXT NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    resource   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE oauth_codes (
    code_sha256  TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    challenge    TEXT NOT NULL,
    resource     TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    grant_id     INTEGER
);
CREATE TABLE oauth_tokens (
    token_sha256 TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    grant_id     INTEGER NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
);
CREATE INDEX oauth_tokens_by_grant ON oauth_tokens(grant_id);
CREATE TABLE oauth_approvals (
    code_sha256 TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);";

/// A client as `claudecron oauth clients` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OAuthClient {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// `registered` (RFC 7591) or `metadata` (a client ID metadata document).
    pub kind: String,
    pub created_at: i64,
    pub fetched_at: i64,
    pub revoked: bool,
    /// Grants not revoked.
    pub active_grants: i64,
}

/// A newly issued pair: the hashes and expiry times.
#[derive(Debug, Clone)]
pub struct TokenPair<'a> {
    pub access_sha256: &'a str,
    pub access_expires: i64,
    pub refresh_sha256: &'a str,
    pub refresh_expires: i64,
}

fn client_row(r: &rusqlite::Row) -> rusqlite::Result<OAuthClient> {
    let uris: String = r.get(2)?;
    Ok(OAuthClient {
        client_id: r.get(0)?,
        name: r.get(1)?,
        redirect_uris: serde_json::from_str(&uris).unwrap_or_default(),
        kind: r.get(3)?,
        created_at: r.get(4)?,
        fetched_at: r.get(5)?,
        revoked: r.get::<_, Option<i64>>(6)?.is_some(),
        active_grants: r.get(7)?,
    })
}

const CLIENT_COLUMNS: &str = "c.client_id, c.name, c.redirect_uris, c.kind, c.created_at, c.fetched_at, c.revoked_at,
     (SELECT COUNT(*) FROM oauth_grants g WHERE g.client_id = c.client_id AND g.revoked_at IS NULL)";

fn insert_pair(c: &Connection, grant_id: i64, pair: &TokenPair) -> Result<()> {
    let mut insert = c.prepare_cached(
        "INSERT INTO oauth_tokens (token_sha256, kind, grant_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )?;
    insert.execute(params![
        pair.access_sha256,
        "access",
        grant_id,
        pair.access_expires
    ])?;
    insert.execute(params![
        pair.refresh_sha256,
        "refresh",
        grant_id,
        pair.refresh_expires
    ])?;
    Ok(())
}

impl Store {
    /// Register a client, or refresh a metadata-document client's name and URIs (a revoked
    /// client stays revoked).
    pub fn oauth_put_client(
        &self,
        client_id: &str,
        name: &str,
        redirect_uris: &[String],
        kind: &str,
        now: i64,
    ) -> Result<()> {
        let uris = serde_json::to_string(redirect_uris).unwrap_or_else(|_| "[]".into());
        self.write(|c| {
            c.execute(
                "INSERT INTO oauth_clients (client_id, name, redirect_uris, kind, created_at, fetched_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT(client_id) DO UPDATE SET name = excluded.name,
                   redirect_uris = excluded.redirect_uris, fetched_at = excluded.fetched_at",
                params![client_id, name, uris, kind, now],
            )?;
            Ok(())
        })
    }

    /// One client.
    pub fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClient>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {CLIENT_COLUMNS} FROM oauth_clients c WHERE c.client_id = ?1"
            ))?
            .query_row([client_id], client_row)
            .optional()?)
    }

    /// Every client, newest first.
    pub fn oauth_clients(&self) -> Result<Vec<OAuthClient>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients c ORDER BY c.created_at DESC, c.client_id"
        ))?;
        let rows = stmt.query_map([], client_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Room for one more client under `max`: when full, clients that never got a grant and are
    /// older than `unused_since` are forgotten first (registration is open to anyone; revoked
    /// clients are kept, so a revocation holds). False when still full.
    pub fn oauth_room_for_client(&self, max: usize, unused_since: i64) -> Result<bool> {
        let count = |c: &rusqlite::Connection| -> rusqlite::Result<i64> {
            c.query_row("SELECT COUNT(*) FROM oauth_clients", [], |r| r.get(0))
        };
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        if count(&self.conn)? < max {
            return Ok(true);
        }
        self.write(|c| {
            c.execute(
                "DELETE FROM oauth_clients WHERE revoked_at IS NULL AND created_at < ?1
                 AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.client_id)",
                [unused_since],
            )?;
            Ok(count(c)? < max)
        })
    }

    /// Revoke a client and every grant it holds; false when there is no such client.
    pub fn oauth_revoke_client(&self, client_id: &str, now: i64) -> Result<bool> {
        self.write(|c| {
            let tx = c.unchecked_transaction()?;
            let n = tx.execute(
                "UPDATE oauth_clients SET revoked_at = COALESCE(revoked_at, ?2) WHERE client_id = ?1",
                params![client_id, now],
            )?;
            tx.execute(
                "UPDATE oauth_grants SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
                params![client_id, now],
            )?;
            tx.commit()?;
            Ok(n > 0)
        })
    }

    /// Revoke one grant: every token of its family stops working.
    pub fn oauth_revoke_grant(&self, grant_id: i64, now: i64) -> Result<()> {
        self.write(|c| {
            c.execute(
                "UPDATE oauth_grants SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![grant_id, now],
            )?;
            Ok(())
        })
    }

    /// Store a new authorization code (and forget expired codes and approvals).
    #[allow(clippy::too_many_arguments)]
    pub fn oauth_save_code(
        &self,
        code_sha256: &str,
        client_id: &str,
        redirect_uri: &str,
        challenge: &str,
        resource: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        self.write(|c| {
            // A redeemed code is kept until a day after it expired, so its reuse is still seen.
            c.execute(
                "DELETE FROM oauth_codes WHERE expires_at < ?1 - 86400",
                [now],
            )?;
            c.execute("DELETE FROM oauth_approvals WHERE expires_at < ?1", [now])?;
            c.execute(
                "INSERT INTO oauth_codes (code_sha256, client_id, redirect_uri, challenge, resource, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![code_sha256, client_id, redirect_uri, challenge, resource, expires_at],
            )?;
            Ok(())
        })
    }

    /// A code by its hash.
    pub fn oauth_code(&self, code_sha256: &str) -> Result<Option<CodeRecord>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT client_id, redirect_uri, challenge, resource, expires_at, grant_id
                 FROM oauth_codes WHERE code_sha256 = ?1",
            )?
            .query_row([code_sha256], |r| {
                Ok(CodeRecord {
                    client_id: r.get(0)?,
                    redirect_uri: r.get(1)?,
                    challenge: r.get(2)?,
                    resource: r.get(3)?,
                    expires_at: r.get(4)?,
                    redeemed_grant: r.get(5)?,
                })
            })
            .optional()?)
    }

    /// Redeem a code: a new grant with its first pair, the code marked with it. None when the
    /// code was redeemed meanwhile (a race of two exchanges: the second loses).
    pub fn oauth_redeem_code(
        &self,
        code_sha256: &str,
        client_id: &str,
        resource: &str,
        pair: &TokenPair,
        now: i64,
    ) -> Result<Option<i64>> {
        self.write(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO oauth_grants (client_id, resource, created_at) VALUES (?1, ?2, ?3)",
                params![client_id, resource, now],
            )?;
            let grant_id = tx.last_insert_rowid();
            let marked = tx.execute(
                "UPDATE oauth_codes SET grant_id = ?2 WHERE code_sha256 = ?1 AND grant_id IS NULL",
                params![code_sha256, grant_id],
            )?;
            if marked != 1 {
                return Ok(None); // dropped: the transaction rolls back
            }
            insert_pair(&tx, grant_id, pair)?;
            tx.execute(
                "DELETE FROM oauth_tokens WHERE expires_at < ?1 - 86400",
                [now],
            )?;
            tx.commit()?;
            Ok(Some(grant_id))
        })
    }

    /// A refresh token with its grant and client.
    pub fn oauth_refresh_token(&self, token_sha256: &str) -> Result<Option<RefreshRecord>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT t.grant_id, g.client_id, g.resource, t.expires_at, t.used_at IS NOT NULL,
                        g.revoked_at IS NOT NULL, c.revoked_at IS NOT NULL
                 FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
                 JOIN oauth_clients c ON c.client_id = g.client_id
                 WHERE t.token_sha256 = ?1 AND t.kind = 'refresh'",
            )?
            .query_row([token_sha256], |r| {
                Ok(RefreshRecord {
                    grant_id: r.get(0)?,
                    client_id: r.get(1)?,
                    resource: r.get(2)?,
                    expires_at: r.get(3)?,
                    used: r.get(4)?,
                    grant_revoked: r.get(5)?,
                    client_revoked: r.get(6)?,
                })
            })
            .optional()?)
    }

    /// Rotate: spend the old refresh token and add a new pair to its grant. False when it was
    /// spent meanwhile (nothing is added).
    pub fn oauth_rotate(
        &self,
        old_sha256: &str,
        grant_id: i64,
        pair: &TokenPair,
        now: i64,
    ) -> Result<bool> {
        self.write(|c| {
            let tx = c.unchecked_transaction()?;
            let spent = tx.execute(
                "UPDATE oauth_tokens SET used_at = ?2 WHERE token_sha256 = ?1 AND used_at IS NULL",
                params![old_sha256, now],
            )?;
            if spent != 1 {
                return Ok(false);
            }
            insert_pair(&tx, grant_id, pair)?;
            tx.commit()?;
            Ok(true)
        })
    }

    /// The grant of a live access token for `resource`: not expired, its grant and client not
    /// revoked.
    pub fn oauth_access_grant(
        &self,
        token_sha256: &str,
        resource: &str,
        now: i64,
    ) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT t.grant_id FROM oauth_tokens t
                 JOIN oauth_grants g ON g.id = t.grant_id
                 JOIN oauth_clients c ON c.client_id = g.client_id
                 WHERE t.token_sha256 = ?1 AND t.kind = 'access' AND t.expires_at > ?3
                   AND g.revoked_at IS NULL AND c.revoked_at IS NULL AND g.resource = ?2",
            )?
            .query_row(params![token_sha256, resource, now], |r| r.get(0))
            .optional()?)
    }

    /// Store an owner's one-time approval code.
    pub fn oauth_add_approval(&self, code_sha256: &str, expires_at: i64) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO oauth_approvals (code_sha256, expires_at) VALUES (?1, ?2)",
                params![code_sha256, expires_at],
            )?;
            Ok(())
        })
    }

    /// Spend an approval code: true when it existed and had not expired (it is gone after).
    pub fn oauth_use_approval(&self, code_sha256: &str, now: i64) -> Result<bool> {
        self.write(|c| {
            let n = c.execute(
                "DELETE FROM oauth_approvals WHERE code_sha256 = ?1 AND expires_at > ?2",
                params![code_sha256, now],
            )?;
            Ok(n == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_client_table_forgets_old_unused_clients_but_keeps_used_and_revoked_ones() {
        let dir = crate::util::TestDir::new("oauth-room");
        let store = Store::open(&dir.path().join("tasks.db")).unwrap();
        let uris = vec!["http://127.0.0.1/cb".to_string()];
        for (id, at) in [
            ("old-unused", 100),
            ("old-used", 100),
            ("old-revoked", 100),
            ("new", 5000),
        ] {
            store
                .oauth_put_client(id, id, &uris, "registered", at)
                .unwrap();
        }
        store.oauth_revoke_client("old-revoked", 200).unwrap();
        store
            .conn
            .execute(
                "INSERT INTO oauth_grants (client_id, resource, created_at) VALUES ('old-used', 'r', 150)",
                [],
            )
            .unwrap();
        assert!(
            store.oauth_room_for_client(5, 1000).unwrap(),
            "room: nothing forgotten"
        );
        assert_eq!(store.oauth_clients().unwrap().len(), 4);
        // Full at 4: the one old client that never got a grant and is not revoked goes.
        assert!(store.oauth_room_for_client(4, 1000).unwrap());
        let mut left: Vec<String> = store
            .oauth_clients()
            .unwrap()
            .into_iter()
            .map(|c| c.client_id)
            .collect();
        left.sort();
        assert_eq!(left, ["new", "old-revoked", "old-used"]);
        // Still full at 3 with nothing more to forget.
        assert!(!store.oauth_room_for_client(3, 1000).unwrap());
    }
}
