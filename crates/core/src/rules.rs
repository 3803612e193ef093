//! Site settings and connector rules: which connector an event went through.
//!
//! Rules are written in TOML as `[[connector]]` sections ([`ConnectorConfig`]) and compiled once
//! into [`ConnectorRules`]. Within a rule every key present must match (AND) and any item of a
//! key's list may match (OR); the first rule in file order that matches wins. Host names and
//! domains compare case-insensitively, as DNS does.

use std::net::IpAddr;

use chrono_tz::Tz;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ipnet::IpNet;
use serde::Deserialize;

use crate::Error;
use crate::event::{Direction, MessageEvent};
use crate::insights::InsightOverrides;

/// The connector of events that no rule matches (and that no source named).
pub const NO_CONNECTOR: &str = "No connector";

/// `[site]`: facts about the mail site as a whole.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// IANA time zone in which days are cut, e.g. `Europe/Berlin`.
    #[serde(default = "default_timezone")]
    pub timezone: Tz,
    /// Mail received from these networks is the site's own, not inbound traffic.
    #[serde(default)]
    pub internal_networks: Vec<IpNet>,
    /// Domains the site receives mail for; sources that must infer direction use them.
    #[serde(default)]
    pub accepted_domains: Vec<String>,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig { timezone: default_timezone(), internal_networks: Vec::new(), accepted_domains: Vec::new() }
    }
}

fn default_timezone() -> Tz {
    Tz::UTC
}

impl SiteConfig {
    pub fn is_internal(&self, ip: IpAddr) -> bool {
        in_networks(&self.internal_networks, ip)
    }
}

/// Whether `ip` is in any of `networks`; `::ffff:10.1.2.3` counts as `10.1.2.3`, as dual-stack
/// listeners log IPv4 clients that way.
fn in_networks(networks: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    networks.iter().any(|net| net.contains(&ip))
}

/// One `[[connector]]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    pub name: String,
    pub direction: Direction,
    /// Globs on the next-hop host name (outbound connectors only).
    #[serde(default, deserialize_with = "non_empty")]
    pub relay: Vec<String>,
    /// Networks the peer's IP address must be in.
    #[serde(default, deserialize_with = "non_empty")]
    pub peer_cidr: Vec<IpNet>,
    /// Globs on the peer's host name.
    #[serde(default, deserialize_with = "non_empty")]
    pub peer_host: Vec<String>,
    /// Globs on the local listener (`smtpd`, `submission`, …).
    #[serde(default, deserialize_with = "non_empty")]
    pub service: Vec<String>,
    /// Globs on the delivery transport (`smtp`, `partner-out`, …).
    #[serde(default, deserialize_with = "non_empty")]
    pub transport: Vec<String>,
    /// Globs on the domain of the sender address.
    #[serde(default, deserialize_with = "non_empty")]
    pub sender_domain: Vec<String>,
    /// Globs of which at least one recipient domain must match one.
    #[serde(default, deserialize_with = "non_empty")]
    pub recipient_domain: Vec<String>,
    /// Globs on the name of the collector that produced the event.
    #[serde(default, deserialize_with = "non_empty")]
    pub source: Vec<String>,
    /// Replace a connector the source itself supplied (Microsoft 365) when this rule matches.
    #[serde(default, rename = "override")]
    pub override_source: bool,
    /// Insight thresholds for this connector, overriding `[insights]`.
    #[serde(default)]
    pub insights: InsightOverrides,
}

/// A key that is present must match, and an empty list matches nothing: reject it rather than
/// silently turning the rule into a catch-all.
fn non_empty<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let items = Vec::<T>::deserialize(d)?;
    if items.is_empty() {
        return Err(serde::de::Error::custom(
            "an empty list matches nothing; remove the key or list at least one item",
        ));
    }
    Ok(items)
}

/// Where an event goes after the rules have seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution<'a> {
    /// Connector traffic, through the named connector.
    Connector(&'a str),
    /// Received from the site's internal networks: not connector traffic.
    Internal,
}

/// Compiled connector rules plus the site's internal networks.
#[derive(Debug, Clone)]
pub struct ConnectorRules {
    site: SiteConfig,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    direction: Direction,
    override_source: bool,
    peer_cidr: Vec<IpNet>,
    relay: Option<GlobSet>,
    peer_host: Option<GlobSet>,
    service: Option<GlobSet>,
    transport: Option<GlobSet>,
    sender_domain: Option<GlobSet>,
    recipient_domain: Option<GlobSet>,
    source: Option<GlobSet>,
}

impl ConnectorRules {
    /// Compiles the rules. Errors name the connector (by position and name) and the key.
    pub fn new(site: SiteConfig, connectors: &[ConnectorConfig]) -> Result<Self, Error> {
        let rules = connectors
            .iter()
            .enumerate()
            .map(|(index, c)| Rule::compile(c).map_err(|e| Error::Rule { index, name: c.name.clone(), message: e }))
            .collect::<Result<_, _>>()?;
        Ok(ConnectorRules { site, rules })
    }

    pub fn site(&self) -> &SiteConfig {
        &self.site
    }

    /// The connector `event` went through, or [`Resolution::Internal`].
    pub fn resolve<'a>(&'a self, event: &'a MessageEvent) -> Resolution<'a> {
        if event.direction == Direction::Inbound && event.peer.ip.is_some_and(|ip| self.site.is_internal(ip)) {
            return Resolution::Internal;
        }
        // A source may not claim the reserved name; treat it as naming no connector.
        let supplied = event
            .connector
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case(NO_CONNECTOR));
        let rule = self.rules.iter().filter(|r| supplied.is_none() || r.override_source).find(|r| r.matches(event));
        Resolution::Connector(match (rule, supplied) {
            (Some(rule), _) => &rule.name,
            (None, Some(name)) => name,
            (None, None) => NO_CONNECTOR,
        })
    }
}

impl Rule {
    fn compile(c: &ConnectorConfig) -> Result<Rule, String> {
        let name = c.name.trim();
        if name.is_empty() {
            return Err("`name` must not be empty".into());
        }
        if name.eq_ignore_ascii_case(NO_CONNECTOR) {
            return Err(format!("`{NO_CONNECTOR}` is reserved for unmatched traffic; pick another name"));
        }
        if !c.relay.is_empty() && c.direction == Direction::Inbound {
            return Err("`relay` matches the next hop of outbound mail; use `peer_host` for inbound connectors".into());
        }
        Ok(Rule {
            name: name.to_string(),
            direction: c.direction,
            override_source: c.override_source,
            peer_cidr: c.peer_cidr.clone(),
            relay: globs("relay", &c.relay)?,
            peer_host: globs("peer_host", &c.peer_host)?,
            service: globs("service", &c.service)?,
            transport: globs("transport", &c.transport)?,
            sender_domain: globs("sender_domain", &c.sender_domain)?,
            recipient_domain: globs("recipient_domain", &c.recipient_domain)?,
            source: globs("source", &c.source)?,
        })
    }

    fn matches(&self, e: &MessageEvent) -> bool {
        fn field(set: &Option<GlobSet>, value: Option<&str>) -> bool {
            set.as_ref().is_none_or(|set| value.is_some_and(|v| set.is_match(v.trim_end_matches('.'))))
        }
        self.direction == e.direction
            && (self.peer_cidr.is_empty() || e.peer.ip.is_some_and(|ip| in_networks(&self.peer_cidr, ip)))
            // For outbound mail the peer is the next-hop relay: `relay` and `peer_host` both match it.
            && field(&self.relay, e.peer.host.as_deref())
            && field(&self.peer_host, e.peer.host.as_deref())
            && field(&self.service, e.service.as_deref())
            && field(&self.transport, e.transport.as_deref())
            && field(&self.sender_domain, e.sender_domain())
            && field(&self.source, e.source.as_deref())
            && self
                .recipient_domain
                .as_ref()
                .is_none_or(|set| e.recipient_domains.iter().any(|d| set.is_match(d.trim_end_matches('.'))))
    }
}

fn globs<S: AsRef<str>>(key: &str, patterns: impl IntoIterator<Item = S>) -> Result<Option<GlobSet>, String> {
    let mut builder = GlobSetBuilder::new();
    let mut any = false;
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern.as_ref())
            .case_insensitive(true)
            .literal_separator(false)
            .build()
            .map_err(|e| format!("`{key}`: {e}"))?;
        builder.add(glob);
        any = true;
    }
    if !any {
        return Ok(None);
    }
    builder.build().map(Some).map_err(|e| format!("`{key}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Peer;

    fn rules(toml_connectors: &str) -> ConnectorRules {
        #[derive(Deserialize)]
        struct Doc {
            site: SiteConfig,
            connector: Vec<ConnectorConfig>,
        }
        let doc: Doc = toml::from_str(toml_connectors).unwrap();
        ConnectorRules::new(doc.site, &doc.connector).unwrap()
    }

    fn event(direction: Direction, host: Option<&str>, ip: Option<&str>) -> MessageEvent {
        let mut e = MessageEvent::new("2026-12-04T15:00:00Z".parse().unwrap(), direction);
        e.peer = Peer { host: host.map(Into::into), ip: ip.map(|i| i.parse().unwrap()), port: None };
        e
    }

    const RULES: &str = r#"
        [site]
        internal_networks = ["10.0.0.0/8"]
        [[connector]]
        name = "Partner Contoso"
        direction = "outbound"
        relay = ["mx*.contoso.com"]
        [[connector]]
        name = "Partner Contoso TLS"
        direction = "outbound"
        relay = ["mx*.contoso.com", "*.contoso.net"]
        [[connector]]
        name = "Submission"
        direction = "inbound"
        service = ["submission"]
        peer_cidr = ["192.0.2.0/24"]
        [[connector]]
        name = "From Fabrikam"
        direction = "inbound"
        sender_domain = ["fabrikam.example"]
        recipient_domain = ["sales.corp.example", "*.hr.corp.example"]
        [[connector]]
        name = "M365 override"
        direction = "inbound"
        source = ["m365*"]
        peer_host = ["*.outbound.protection.outlook.com"]
        override = true
    "#;

    #[test]
    fn first_matching_rule_wins_and_hosts_ignore_case_and_root_dot() {
        let r = rules(RULES);
        let e = event(Direction::Outbound, Some("MX2.Contoso.COM."), None);
        assert_eq!(r.resolve(&e), Resolution::Connector("Partner Contoso"));
        let e = event(Direction::Outbound, Some("a.contoso.net"), None);
        assert_eq!(r.resolve(&e), Resolution::Connector("Partner Contoso TLS"));
        // Direction is part of every rule.
        let e = event(Direction::Inbound, Some("mx1.contoso.com"), None);
        assert_eq!(r.resolve(&e), Resolution::Connector(NO_CONNECTOR));
    }

    #[test]
    fn all_keys_must_match() {
        let r = rules(RULES);
        let mut e = event(Direction::Inbound, None, Some("192.0.2.9"));
        assert_eq!(r.resolve(&e), Resolution::Connector(NO_CONNECTOR), "service missing");
        e.service = Some("submission".into());
        assert_eq!(r.resolve(&e), Resolution::Connector("Submission"));
        e.peer.ip = Some("198.51.100.1".parse().unwrap());
        assert_eq!(r.resolve(&e), Resolution::Connector(NO_CONNECTOR), "outside peer_cidr");
    }

    #[test]
    fn sender_and_any_recipient_domain() {
        let r = rules(RULES);
        let mut e = event(Direction::Inbound, None, Some("203.0.113.5"));
        e.sender = Some("<Bob@Fabrikam.Example>".into());
        e.recipient_domains = vec!["corp.example".into(), "x.hr.corp.example".into()];
        assert_eq!(r.resolve(&e), Resolution::Connector("From Fabrikam"));
        e.recipient_domains = vec!["corp.example".into()];
        assert_eq!(r.resolve(&e), Resolution::Connector(NO_CONNECTOR));
    }

    #[test]
    fn internal_networks_are_not_inbound_traffic() {
        let r = rules(RULES);
        assert_eq!(r.resolve(&event(Direction::Inbound, None, Some("10.1.2.3"))), Resolution::Internal);
        assert_eq!(r.resolve(&event(Direction::Inbound, None, Some("::ffff:10.1.2.3"))), Resolution::Internal);
        // Outbound to an internal relay is still outbound traffic.
        assert_eq!(r.resolve(&event(Direction::Outbound, None, Some("10.1.2.3"))), Resolution::Connector(NO_CONNECTOR));
    }

    #[test]
    fn a_supplied_connector_is_kept_unless_an_override_rule_matches() {
        let r = rules(RULES);
        let mut e = event(Direction::Inbound, Some("mail.protection.outlook.com"), None);
        e.connector = Some(" Inbound from partner ".into());
        e.source = Some("m365-trace".into());
        assert_eq!(r.resolve(&e), Resolution::Connector("Inbound from partner"));
        e.peer.host = Some("x.outbound.protection.outlook.com".into());
        assert_eq!(r.resolve(&e), Resolution::Connector("M365 override"));
        // The reserved name cannot be supplied.
        e.connector = Some("no connector".into());
        e.peer.host = Some("mail.protection.outlook.com".into());
        assert_eq!(r.resolve(&e), Resolution::Connector(NO_CONNECTOR));
        // Non-override rules never replace a supplied connector.
        let mut e = event(Direction::Outbound, Some("mx1.contoso.com"), None);
        e.connector = Some("To partner".into());
        assert_eq!(r.resolve(&e), Resolution::Connector("To partner"));
    }

    type BTreeMapOfConnectors = std::collections::BTreeMap<String, Vec<ConnectorConfig>>;

    #[test]
    fn relay_and_peer_host_must_both_match() {
        let r = rules(
            "[site]\n[[connector]]\nname = \"Both\"\ndirection = \"outbound\"\nrelay = [\"mx*\"]\npeer_host = [\"*.example\"]\n",
        );
        assert_eq!(r.resolve(&event(Direction::Outbound, Some("mx1.example"), None)), Resolution::Connector("Both"));
        assert_eq!(
            r.resolve(&event(Direction::Outbound, Some("mx1.example.net"), None)),
            Resolution::Connector(NO_CONNECTOR)
        );
    }

    #[test]
    fn invalid_rules_are_errors_naming_the_connector() {
        let bad = |name: &str, extra: &str| {
            let doc = format!("[[connector]]\nname = \"{name}\"\n{extra}");
            #[derive(Deserialize)]
            struct Doc {
                connector: Vec<ConnectorConfig>,
            }
            let d: Doc = toml::from_str(&doc).unwrap();
            ConnectorRules::new(SiteConfig::default(), &d.connector).unwrap_err().to_string()
        };
        let e = bad("X", "direction = \"inbound\"\nrelay = [\"a\"]");
        assert!(e.contains("connector #1 \"X\"") && e.contains("use `peer_host`"), "{e}");
        assert!(bad("X", "direction = \"outbound\"\nrelay = [\"a[\"]").contains("`relay`"));
        assert!(bad("no connector", "direction = \"outbound\"").contains("reserved"));
        assert!(bad(" ", "direction = \"outbound\"").contains("empty"));
        let empty = toml::from_str::<BTreeMapOfConnectors>(
            "[[connector]]\nname = \"X\"\ndirection = \"outbound\"\nrelay = []\n",
        );
        assert!(empty.unwrap_err().to_string().contains("an empty list matches nothing"));
    }
}
