//! Real MTA logs against their ground truth: `truth.jsonl` as the lab's `send.py` writes it, one
//! object per message sent (`kind`, `queued`, `tls_in`, and per relay `deliveries` with the TLS
//! the relay offers and the final `status`), and what a collector's events count.

use std::collections::BTreeMap;
use std::path::Path;

use mailflow_core::{Direction, MessageEvent, SiteConfig, Status, TlsVersion};
use serde_json::Value;

/// (direction, TLS version, status) → messages.
pub type Counts = BTreeMap<(Direction, TlsVersion, Status), u64>;

/// What the events count, leaving out inbound mail from the site's internal networks, as
/// reports do.
pub fn counted(events: &[MessageEvent], site: &SiteConfig) -> Counts {
    let mut counts = Counts::new();
    for e in events {
        if e.direction == Direction::Inbound && e.peer.ip.is_some_and(|ip| site.is_internal(ip)) {
            continue;
        }
        let key = (e.direction, e.tls.version.unwrap_or(TlsVersion::Unknown), e.status.unwrap_or(Status::Delivered));
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// The objects of a `truth.jsonl`.
pub fn truth(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// What the ground truth at `path` says: inbound, one per message queued from an outside
/// client, with its session's TLS; outbound, one per message and relay, with the TLS the relay
/// offers and the final status.
pub fn truth_counts(path: &Path) -> Counts {
    let mut counts = Counts::new();
    for t in truth(path).iter().filter(|t| t["queued"] == true) {
        match t["kind"].as_str().unwrap() {
            "inbound" => *counts.entry((Direction::Inbound, tls(&t["tls_in"]), Status::Delivered)).or_default() += 1,
            "outbound" => {
                for d in t["deliveries"].as_array().unwrap() {
                    *counts.entry((Direction::Outbound, tls(&d["tls"]), status(&d["status"]))).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    counts
}

/// A truth's TLS version: `null` is plaintext.
pub fn tls(v: &Value) -> TlsVersion {
    match v.as_str() {
        None => TlsVersion::None,
        Some("TLSv1") => TlsVersion::Tls1_0,
        Some("TLSv1.1") => TlsVersion::Tls1_1,
        Some("TLSv1.2") => TlsVersion::Tls1_2,
        Some("TLSv1.3") => TlsVersion::Tls1_3,
        Some(other) => panic!("unknown TLS version in the truth: {other}"),
    }
}

/// A truth's delivery status: sent, deferred or bounced.
pub fn status(v: &Value) -> Status {
    match v.as_str().unwrap() {
        "sent" => Status::Delivered,
        "deferred" => Status::Deferred,
        "bounced" => Status::Failed,
        other => panic!("unknown status in the truth: {other}"),
    }
}
