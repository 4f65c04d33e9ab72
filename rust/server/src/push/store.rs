//! Where push registrations are kept: per uid and device, durable across restarts.
//!
//! `PushStore` is the seam: the embedded SQLite store below is the default (no set-up), and
//! a store shared by several server nodes (Redis, say) is another implementation of it.

use std::path::Path;
use std::sync::Mutex;

use duet_protocol::PushToken;
use rusqlite::{params, Connection, OptionalExtension};

/// The most devices of one uid with a registration: a user's phones and tablets, with room
/// for reinstalls whose old token was never unregistered. One more evicts the oldest.
pub const DEFAULT_MAX_TOKENS_PER_UID: usize = 10;
/// The most registrations in all: past this a registration from a new device is refused.
pub const DEFAULT_MAX_REGISTRATIONS: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the push store holds {0} registrations, its limit")]
    Full(usize),
    #[error("push store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("push store: a stored registration does not parse: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("push store: {0}")]
    Io(#[from] std::io::Error),
    #[error("push store: its lock was poisoned by a panic")]
    Poisoned,
}

/// The registrations of one uid's devices. Methods block briefly (a local write); a caller
/// on an async runtime runs writes on a blocking thread.
pub(crate) trait PushStore: Send + Sync {
    /// Keeps `push` for the device, replacing its earlier token. The same token held by
    /// another device (the app reinstalled, or signed in as someone else on that phone) is
    /// dropped there, so one user's calls never ring a phone now signed in as another.
    fn register(&self, uid: &str, device_id: &str, push: &PushToken) -> Result<(), StoreError>;
    fn unregister(&self, uid: &str, device_id: &str) -> Result<(), StoreError>;
    /// Every registered device of `uid`, oldest registration first.
    fn registrations(&self, uid: &str) -> Result<Vec<(String, PushToken)>, StoreError>;
    /// Drops the device's registration if it still holds `token` (the push service called
    /// it dead); a token registered since is kept. True if one was dropped.
    fn remove_dead(&self, uid: &str, device_id: &str, token: &str) -> Result<bool, StoreError>;
}

/// The embedded store: one SQLite file under the data directory (or in memory, for servers
/// with none), written in WAL mode so that a registration is durable once acknowledged.
pub(crate) struct SqliteStore {
    db: Mutex<Connection>,
    max_per_uid: usize,
    max_total: usize,
}

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = FULL;
    CREATE TABLE IF NOT EXISTS push_registrations (
        uid TEXT NOT NULL,
        device_id TEXT NOT NULL,
        token TEXT NOT NULL,
        push TEXT NOT NULL,
        registered_ms INTEGER NOT NULL,
        PRIMARY KEY (uid, device_id)
    );
    CREATE INDEX IF NOT EXISTS push_registrations_token ON push_registrations (token);
";

impl SqliteStore {
    /// Opens (creating if need be) `dir/push.sqlite3`, or an in-memory store without `dir`.
    pub(crate) fn open(
        dir: Option<&Path>,
        max_per_uid: usize,
        max_total: usize,
    ) -> Result<Self, StoreError> {
        let db = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                Connection::open(dir.join("push.sqlite3"))?
            }
            None => Connection::open_in_memory()?,
        };
        db.execute_batch(SCHEMA)?;
        Ok(SqliteStore { db: Mutex::new(db), max_per_uid: max_per_uid.max(1), max_total })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.db.lock().map_err(|_| StoreError::Poisoned)
    }
}

impl PushStore for SqliteStore {
    fn register(&self, uid: &str, device_id: &str, push: &PushToken) -> Result<(), StoreError> {
        let mut db = self.lock()?;
        let tx = db.transaction()?;
        let known: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM push_registrations WHERE uid = ?1 AND device_id = ?2",
                params![uid, device_id],
                |row| row.get(0),
            )
            .optional()?;
        if known.is_none() {
            let total: i64 =
                tx.query_row("SELECT COUNT(*) FROM push_registrations", [], |row| row.get(0))?;
            if usize::try_from(total).unwrap_or(usize::MAX) >= self.max_total {
                return Err(StoreError::Full(self.max_total));
            }
            // Over the per-uid bound the oldest registration goes: it is the likeliest to
            // be a device long gone.
            let keep = i64::try_from(self.max_per_uid - 1).unwrap_or(i64::MAX);
            tx.execute(
                "DELETE FROM push_registrations WHERE uid = ?1 AND device_id IN (
                     SELECT device_id FROM push_registrations WHERE uid = ?1
                     ORDER BY registered_ms DESC, rowid DESC LIMIT -1 OFFSET ?2)",
                params![uid, keep],
            )?;
        }
        tx.execute(
            "DELETE FROM push_registrations WHERE token = ?1 AND NOT (uid = ?2 AND device_id = ?3)",
            params![push.token(), uid, device_id],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO push_registrations (uid, device_id, token, push, registered_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![uid, device_id, push.token(), serde_json::to_string(push)?, unix_ms()],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn unregister(&self, uid: &str, device_id: &str) -> Result<(), StoreError> {
        self.lock()?.execute(
            "DELETE FROM push_registrations WHERE uid = ?1 AND device_id = ?2",
            params![uid, device_id],
        )?;
        Ok(())
    }

    fn registrations(&self, uid: &str) -> Result<Vec<(String, PushToken)>, StoreError> {
        let db = self.lock()?;
        let mut query = db.prepare_cached(
            "SELECT device_id, push FROM push_registrations WHERE uid = ?1
             ORDER BY registered_ms, rowid",
        )?;
        let rows = query.query_map(params![uid], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (device_id, push) = row?;
            out.push((device_id, serde_json::from_str(&push)?));
        }
        Ok(out)
    }

    fn remove_dead(&self, uid: &str, device_id: &str, token: &str) -> Result<bool, StoreError> {
        let removed = self.lock()?.execute(
            "DELETE FROM push_registrations WHERE uid = ?1 AND device_id = ?2 AND token = ?3",
            params![uid, device_id, token],
        )?;
        Ok(removed > 0)
    }
}

/// Now, as SQLite's INTEGER (signed) keeps it.
fn unix_ms() -> i64 {
    i64::try_from(super::unix_ms()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fcm(token: &str) -> PushToken {
        PushToken::Fcm { token: token.into() }
    }

    #[test]
    fn a_uid_keeps_at_most_its_bound_and_the_oldest_goes() {
        let store = SqliteStore::open(None, 2, 100).unwrap();
        store.register("bob", "d1", &fcm("t1")).unwrap();
        store.register("bob", "d2", &fcm("t2")).unwrap();
        store.register("bob", "d2", &fcm("t2b")).unwrap();
        store.register("bob", "d3", &fcm("t3")).unwrap();
        let devices: Vec<String> =
            store.registrations("bob").unwrap().into_iter().map(|(d, _)| d).collect();
        assert_eq!(devices, ["d2", "d3"]);
    }

    #[test]
    fn a_token_belongs_to_one_device_and_the_total_is_bounded() {
        let store = SqliteStore::open(None, 10, 2).unwrap();
        store.register("alice", "phone", &fcm("t")).unwrap();
        store.register("bob", "phone", &fcm("t")).unwrap();
        assert!(store.registrations("alice").unwrap().is_empty());
        store.register("carol", "x", &fcm("u")).unwrap();
        assert!(matches!(store.register("dave", "y", &fcm("v")), Err(StoreError::Full(2))));
        // A known device may still change its token at the bound.
        store.register("carol", "x", &fcm("w")).unwrap();
    }

    #[test]
    fn a_dead_token_goes_unless_replaced_since() {
        let store = SqliteStore::open(None, 10, 100).unwrap();
        store.register("bob", "d", &fcm("old")).unwrap();
        store.register("bob", "d", &fcm("new")).unwrap();
        assert!(!store.remove_dead("bob", "d", "old").unwrap());
        assert!(store.remove_dead("bob", "d", "new").unwrap());
        assert!(store.registrations("bob").unwrap().is_empty());
    }
}
