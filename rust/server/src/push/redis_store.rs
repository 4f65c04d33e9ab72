//! Push registrations in Redis, for a cluster (`--redis`): a device registered through any
//! node is read by whichever node leads, and pushed from there.
//!
//! `duet:push:<uid>` is a hash, device → `{"token","push","seq"}` (the registration and
//! its place in the order of all registrations, from `duet:push:seq`); `duet:push:token:<token>` names the `uid\ndevice` holding a token, so
//! a token moves with its phone; `duet:push:count` is the number of registrations, for the
//! total bound. Each write is one Lua script, so two nodes registering at once never break
//! the bounds. The keys a script touches are computed in it: one Redis (or a primary with
//! replicas), not Redis Cluster.
//!
//! The store's methods block, as SQLite's do: a command on loopback or a LAN, each bounded
//! by `TIMEOUT`. One connection, reopened after a failure.

use std::sync::Mutex;
use std::time::Duration;

use duet_protocol::PushToken;

use super::store::{PushStore, StoreError};

/// The longest one command may take before the store reports it failed.
const TIMEOUT: Duration = Duration::from_secs(1);
const PREFIX: &str = "duet:push:";
const COUNT: &str = "duet:push:count";

/// Drops the registration of device ARGV[1] of KEYS[1] (if any), and its token's owner key
/// if it still names it. Shared by the scripts below.
const DROP_FN: &str = r"
local function drop(hash, uid, device)
  local old = redis.call('hget', hash, device)
  if not old then return 0 end
  redis.call('hdel', hash, device)
  redis.call('decr', KEYS[2])
  local tkey = ARGV[1] .. 'token:' .. cjson.decode(old).token
  if redis.call('get', tkey) == uid .. '\n' .. device then redis.call('del', tkey) end
  return 1
end
";

/// KEYS: uid hash, count. ARGV: prefix, uid, device, token, registration, max per uid,
/// max total. Returns 1, or -1 when the total bound refuses a new device.
const REGISTER: &str = r"
local hash, prefix, uid, device, token = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local holder = redis.call('get', prefix .. 'token:' .. token)
if holder and holder ~= uid .. '\n' .. device then
  local sep = string.find(holder, '\n', 1, true)
  local huid = string.sub(holder, 1, sep - 1)
  drop(prefix .. huid, huid, string.sub(holder, sep + 1))
end
if redis.call('hexists', hash, device) == 0 then
  if tonumber(redis.call('get', KEYS[2]) or '0') >= tonumber(ARGV[7]) then return -1 end
  while redis.call('hlen', hash) >= tonumber(ARGV[6]) do
    local oldest, oldest_seq = nil, nil
    local all = redis.call('hgetall', hash)
    for i = 1, #all, 2 do
      local seq = cjson.decode(all[i + 1]).seq
      if not oldest_seq or seq < oldest_seq then oldest, oldest_seq = all[i], seq end
    end
    drop(hash, uid, oldest)
  end
else
  drop(hash, uid, device)
end
local registration = cjson.decode(ARGV[5])
registration.seq = redis.call('incr', prefix .. 'seq')
redis.call('hset', hash, device, cjson.encode(registration))
redis.call('incr', KEYS[2])
redis.call('set', prefix .. 'token:' .. token, uid .. '\n' .. device)
return 1
";

/// KEYS: uid hash, count. ARGV: prefix, uid, device, and a token or "" for any.
const UNREGISTER: &str = r"
local old = redis.call('hget', KEYS[1], ARGV[3])
if not old then return 0 end
if ARGV[4] ~= '' and cjson.decode(old).token ~= ARGV[4] then return 0 end
return drop(KEYS[1], ARGV[2], ARGV[3])
";

#[derive(serde::Serialize, serde::Deserialize)]
struct Registration {
    token: String,
    push: PushToken,
    /// Set by the script: later registrations have larger numbers.
    #[serde(default)]
    seq: u64,
}

pub(crate) struct RedisStore {
    client: redis::Client,
    connection: Mutex<Option<redis::Connection>>,
    max_per_uid: usize,
    max_total: usize,
    /// Built once: a script's SHA-1 is computed when it is built, and it is sent by that
    /// hash (EVALSHA) on every write.
    register_script: redis::Script,
    unregister_script: redis::Script,
}

impl RedisStore {
    /// A store on the Redis at `url`; fails if it cannot be reached now.
    pub(crate) fn open(
        url: &str,
        max_per_uid: usize,
        max_total: usize,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(redis_error)?;
        let store = RedisStore {
            client,
            connection: Mutex::new(None),
            max_per_uid: max_per_uid.max(1),
            max_total,
            register_script: redis::Script::new(&format!("{DROP_FN}{REGISTER}")),
            unregister_script: redis::Script::new(&format!("{DROP_FN}{UNREGISTER}")),
        };
        store.with(|c| redis::cmd("PING").query::<String>(c))?;
        Ok(store)
    }

    /// Runs `f` on the connection (opened if need be); a failure closes it, so the next
    /// call reconnects.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut slot = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        if slot.is_none() {
            let c = self.client.get_connection_with_timeout(TIMEOUT).map_err(redis_error)?;
            c.set_read_timeout(Some(TIMEOUT)).map_err(redis_error)?;
            c.set_write_timeout(Some(TIMEOUT)).map_err(redis_error)?;
            *slot = Some(c);
        }
        let Some(connection) = slot.as_mut() else { return Err(StoreError::Poisoned) };
        let result = f(connection);
        if result.is_err() {
            *slot = None;
        }
        result.map_err(redis_error)
    }

    fn unregister_if(&self, uid: &str, device_id: &str, token: &str) -> Result<bool, StoreError> {
        let dropped: i64 = self.with(|c| {
            self.unregister_script
                .key(hash_key(uid))
                .key(COUNT)
                .arg(PREFIX)
                .arg(uid)
                .arg(device_id)
                .arg(token)
                .invoke(c)
        })?;
        Ok(dropped == 1)
    }
}

fn hash_key(uid: &str) -> String {
    format!("{PREFIX}{uid}")
}

fn redis_error(e: redis::RedisError) -> StoreError {
    StoreError::Io(std::io::Error::other(format!("redis: {e}")))
}

impl PushStore for RedisStore {
    fn register(&self, uid: &str, device_id: &str, push: &PushToken) -> Result<(), StoreError> {
        let token = push.token().to_owned();
        let registration = Registration { token: token.clone(), push: push.clone(), seq: 0 };
        let registration = serde_json::to_string(&registration)?;
        let done: i64 = self.with(|c| {
            self.register_script
                .key(hash_key(uid))
                .key(COUNT)
                .arg(PREFIX)
                .arg(uid)
                .arg(device_id)
                .arg(&token)
                .arg(&registration)
                .arg(self.max_per_uid)
                .arg(self.max_total)
                .invoke(c)
        })?;
        if done < 0 {
            return Err(StoreError::Full(self.max_total));
        }
        Ok(())
    }

    fn unregister(&self, uid: &str, device_id: &str) -> Result<(), StoreError> {
        self.unregister_if(uid, device_id, "").map(|_| ())
    }

    fn registrations(&self, uid: &str) -> Result<Vec<(String, PushToken)>, StoreError> {
        let all: Vec<(String, String)> =
            self.with(|c| redis::cmd("HGETALL").arg(hash_key(uid)).query(c))?;
        let mut out = Vec::with_capacity(all.len());
        for (device, text) in all {
            let registration: Registration = serde_json::from_str(&text)?;
            out.push((registration.seq, device, registration.push));
        }
        out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(out.into_iter().map(|(_, device, push)| (device, push)).collect())
    }

    fn remove_dead(&self, uid: &str, device_id: &str, token: &str) -> Result<bool, StoreError> {
        if token.is_empty() {
            return Ok(false);
        }
        self.unregister_if(uid, device_id, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    /// Debian's redis-server (scripts/bootstrap installs it) on a free loopback port,
    /// killed when dropped.
    struct Redis {
        child: Child,
        url: String,
    }

    impl Redis {
        fn start() -> Redis {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server (run scripts/bootstrap)");
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "redis-server is not listening");
                std::thread::sleep(Duration::from_millis(20));
            }
            Redis { child, url: format!("redis://127.0.0.1:{port}") }
        }
    }

    impl Drop for Redis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn fcm(token: &str) -> PushToken {
        PushToken::Fcm { token: token.into() }
    }

    fn devices(store: &RedisStore, uid: &str) -> Vec<String> {
        store.registrations(uid).unwrap().into_iter().map(|(d, _)| d).collect()
    }

    /// Two nodes' stores on one Redis: what one registers, the other (the leader) reads.
    #[test]
    fn a_registration_through_one_node_is_read_by_another() {
        let redis = Redis::start();
        let node_a = RedisStore::open(&redis.url, 10, 100).unwrap();
        let leader = RedisStore::open(&redis.url, 10, 100).unwrap();
        node_a.register("bob", "phone", &fcm("t1")).unwrap();
        assert_eq!(leader.registrations("bob").unwrap(), [("phone".into(), fcm("t1"))]);
        node_a.unregister("bob", "phone").unwrap();
        assert!(leader.registrations("bob").unwrap().is_empty());
    }

    #[test]
    fn the_bounds_and_the_token_rules_hold_as_in_sqlite() {
        let redis = Redis::start();
        let store = RedisStore::open(&redis.url, 2, 3).unwrap();
        store.register("bob", "d1", &fcm("t1")).unwrap();
        store.register("bob", "d2", &fcm("t2")).unwrap();
        store.register("bob", "d2", &fcm("t2b")).unwrap();
        store.register("bob", "d3", &fcm("t3")).unwrap();
        assert_eq!(devices(&store, "bob"), ["d2", "d3"]);
        // A token belongs to one device: alice's phone now signed in as carol.
        store.register("alice", "phone", &fcm("t")).unwrap();
        store.register("carol", "phone", &fcm("t")).unwrap();
        assert!(devices(&store, "alice").is_empty());
        assert!(matches!(store.register("dave", "y", &fcm("v")), Err(StoreError::Full(3))));
        // A known device may still change its token at the bound.
        store.register("carol", "phone", &fcm("w")).unwrap();
        // A dead token goes unless replaced since.
        assert!(!store.remove_dead("carol", "phone", "t").unwrap());
        assert!(store.remove_dead("carol", "phone", "w").unwrap());
        assert!(devices(&store, "carol").is_empty());
        store.register("dave", "y", &fcm("v")).unwrap();
    }
}
