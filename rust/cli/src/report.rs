//! Lifecycle events as the CLI prints them: one line each, readable or JSON.

use std::time::{Instant, SystemTime};

use serde_json::{json, Map, Value};

#[derive(Clone)]
pub(crate) struct Reporter {
    json: bool,
    /// Set when one process prints for several clients (`duet demo`).
    who: Option<String>,
    started: Instant,
}

impl Reporter {
    pub(crate) fn new(json: bool, started: Instant) -> Self {
        Reporter { json, who: None, started }
    }

    pub(crate) fn for_client(&self, uid: &str) -> Self {
        Reporter { who: Some(uid.to_owned()), ..self.clone() }
    }

    /// Prints one event. `fields` are the event's own (`from`, `status`, `reason`, …).
    pub(crate) fn event(&self, event: &str, fields: &[(&str, Value)]) {
        if self.json {
            let mut obj = Map::new();
            obj.insert("event".into(), json!(event));
            if let Some(who) = &self.who {
                obj.insert("uid".into(), json!(who));
            }
            for (k, v) in fields {
                obj.insert((*k).into(), v.clone());
            }
            let t_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            obj.insert("t_ms".into(), json!(t_ms));
            // Wall-clock time too: a script that changes the network from another process
            // matches its own moments to these.
            obj.insert("unix_ms".into(), json!(crate::video_check::unix_ms(SystemTime::now())));
            println!("{}", Value::Object(obj));
        } else {
            let detail: Vec<String> = fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect();
            let who = self.who.as_deref().map(|w| format!("[{w}] ")).unwrap_or_default();
            let t = self.started.elapsed().as_secs_f64();
            println!("{t:7.3}s {who}{event} {}", detail.join(" ").trim_end());
        }
    }

    pub(crate) fn error(&self, message: &str) {
        self.event("error", &[("message", json!(message))]);
    }
}
