//! Lifecycle events as the CLI prints them: one line each, readable or JSON.

use std::time::Instant;

use serde_json::{json, Map, Value};

#[derive(Clone)]
pub struct Reporter {
    json: bool,
    /// Set when one process prints for several clients (`duet demo`).
    who: Option<String>,
    started: Instant,
}

impl Reporter {
    pub fn new(json: bool, started: Instant) -> Self {
        Reporter { json, who: None, started }
    }

    pub fn for_client(&self, uid: &str) -> Self {
        Reporter { who: Some(uid.to_owned()), ..self.clone() }
    }

    /// Prints one event. `fields` are the event's own (`from`, `status`, `reason`, …).
    pub fn event(&self, event: &str, fields: &[(&str, Value)]) {
        if self.json {
            let mut obj = Map::new();
            obj.insert("event".into(), json!(event));
            if let Some(who) = &self.who {
                obj.insert("uid".into(), json!(who));
            }
            for (k, v) in fields {
                obj.insert((*k).into(), v.clone());
            }
            obj.insert("t_ms".into(), json!(self.started.elapsed().as_millis() as u64));
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

    pub fn error(&self, message: &str) {
        self.event("error", &[("message", json!(message))]);
    }
}
