//! What a push says about a call, cut to fit the push service's size limit.

use serde_json::{json, Map, Value};

/// APNs takes VoIP payloads of up to 5 KiB.
pub(crate) const APNS_MAX_PAYLOAD: usize = 5120;
/// FCM takes up to 4 KiB of data (keys and values).
pub(crate) const FCM_MAX_DATA: usize = 4096;

/// The call a push announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallPush {
    pub call_id: String,
    pub caller_uid: String,
    pub data: Option<String>,
    /// The ring deadline, in milliseconds since the Unix epoch.
    pub deadline_ms: u64,
}

/// The APNs payload: `{"aps":{},"duet":{...}}`; VoIP pushes show nothing themselves, the
/// app reports the call to CallKit from `duet`. Custom data that does not fit is cut (at a
/// character boundary) and `data_truncated` says so: `incoming` carries it whole.
pub(crate) fn apns(call: &CallPush) -> String {
    fit(APNS_MAX_PAYLOAD, call.data.as_deref(), |data, truncated| {
        let mut duet = json!({
            "call_id": call.call_id,
            "from": call.caller_uid,
            "deadline_ms": call.deadline_ms,
        });
        if let Some(data) = data {
            duet["data"] = Value::from(data);
        }
        if truncated {
            duet["data_truncated"] = Value::from(true);
        }
        let body = json!({"aps": {}, "duet": duet}).to_string();
        let size = body.len();
        (body, size)
    })
}

/// FCM's `data` map: strings only, keys prefixed `duet_` so they do not collide with the
/// app's own.
pub(crate) fn fcm_data(call: &CallPush) -> Map<String, Value> {
    fit(FCM_MAX_DATA, call.data.as_deref(), |data, truncated| {
        let mut map = Map::new();
        map.insert("duet_call_id".into(), Value::from(call.call_id.clone()));
        map.insert("duet_from".into(), Value::from(call.caller_uid.clone()));
        map.insert("duet_deadline_ms".into(), Value::from(call.deadline_ms.to_string()));
        if let Some(data) = data {
            map.insert("duet_data".into(), Value::from(data));
        }
        if truncated {
            map.insert("duet_data_truncated".into(), Value::from("true"));
        }
        // FCM counts keys and values, as JSON would carry them.
        let size = map.iter().map(|(k, v)| k.len() + v.to_string().len()).sum();
        (map, size)
    })
}

/// Builds with all of `data`, then with less until the size is within `limit`: JSON
/// escaping makes the size of a cut unknowable in advance, so each try shrinks the data
/// by the overshoot.
fn fit<T>(limit: usize, data: Option<&str>, build: impl Fn(Option<&str>, bool) -> (T, usize)) -> T {
    let (whole, size) = build(data, false);
    let Some(data) = data else { return whole };
    if size <= limit {
        return whole;
    }
    let mut keep = data.len().saturating_sub(size - limit);
    loop {
        let cut = floor_char_boundary(data, keep);
        let (built, size) = build(Some(&data[..cut]), true);
        if size <= limit || cut == 0 {
            return built;
        }
        keep = cut.saturating_sub((size - limit).max(1));
    }
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    (0..=at.min(s.len())).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(data: Option<String>) -> CallPush {
        CallPush {
            call_id: "c1".into(),
            caller_uid: "alice".into(),
            data,
            deadline_ms: 1_764_000_000_000,
        }
    }

    #[test]
    fn small_data_goes_whole() {
        let body: Value = serde_json::from_str(&apns(&call(Some("hi".into())))).unwrap();
        assert_eq!(body["duet"]["data"], "hi");
        assert!(body["duet"].get("data_truncated").is_none());
        assert_eq!(fcm_data(&call(None))["duet_call_id"], "c1");
    }

    #[test]
    fn large_data_is_cut_to_fit_at_a_character_boundary() {
        // Quotes and multi-byte characters grow under JSON escaping or sit across a cut.
        let data = "é\"\u{1F600}".repeat(3000);
        let body = apns(&call(Some(data.clone())));
        assert!(body.len() <= APNS_MAX_PAYLOAD, "{}", body.len());
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["duet"]["data_truncated"], true);
        let kept = parsed["duet"]["data"].as_str().unwrap();
        assert!(data.starts_with(kept) && kept.len() > 1000);
        let map = fcm_data(&call(Some(data)));
        let size: usize = map.iter().map(|(k, v)| k.len() + v.to_string().len()).sum();
        assert!(size <= FCM_MAX_DATA);
        assert_eq!(map["duet_data_truncated"], "true");
    }
}
