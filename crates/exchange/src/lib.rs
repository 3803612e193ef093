//! What Exchange (Online and Server) writes about connectors and TLS, read without I/O.
//!
//! Microsoft's message trace API, its CSV exports and Exchange Server's tracking logs spell the
//! same facts the same few ways: a `custom_data` string of `S:key=value` entries, the `data` XML
//! of trace details, TLS versions as `SP_PROT_TLS1_2_SERVER` or `TLS1.2`, and built-in connector
//! names that mean "no connector". Each collector that reads them shares this crate, so a new
//! spelling is learnt once.
//!
//! # Layout
//! - [`tls_in_description`]: TLS versions in trace descriptions.
//! - [`CustomData`]: `S:key=value;…` strings, and [`connector_name`] inside them.
//! - [`mep_entries`]: the `<MEP Name="…" String="…"/>` XML of trace details.
//! - [`is_builtin_connector`]: Microsoft's own connectors, which are no connector of the tenant's.
//! - [`is_internal_send_connector`]: send connectors between an organization's own servers.
//! - [`direction_of_sender`], [`is_accepted`], [`domains`]: addresses and the accepted domains.
//! - [`status`], [`overall_status`]: delivery status words and events, and a message's status.

use mailflow_core::{Direction, Status, TlsVersion};

/// The TLS version a trace event's description names, as in "… using TLS1.2 with AES256",
/// "… using **TLS1.2** with **AES256**" or "(TLS1.2)".
pub fn tls_in_description(description: &str) -> Option<TlsVersion> {
    description
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';'))
        // Markup and punctuation around a word are not part of it; `.` and `_` may be (`TLS1.2`, `TLS1_2`).
        .map(|word| word.trim_matches(|c: char| !(c.is_alphanumeric() || matches!(c, '.' | '_'))))
        .filter(|word| {
            let prefix = |p: &str| word.get(..p.len()).is_some_and(|w| w.eq_ignore_ascii_case(p));
            word.len() >= 4 && (prefix("tls") || prefix("ssl") || prefix("SP_PROT_"))
        })
        .find_map(TlsVersion::from_protocol)
}

/// A `custom_data` string: `S:key=value` entries joined by `;`. A value may itself hold `;`
/// (`S:…TenantOutboundConnectorCustomData=Name=X;ConnectorType=Partner`), so a new entry starts
/// only where a segment begins with a one-letter type and a colon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomData<'a> {
    entries: Vec<(&'a str, &'a str)>,
}

impl<'a> CustomData<'a> {
    pub fn parse(text: &'a str) -> Self {
        let mut entries: Vec<(&'a str, &'a str)> = Vec::new();
        let mut offset = 0;
        for segment in text.split(';') {
            let start = offset;
            offset += segment.len() + 1;
            // `…;` and `…;;…` end a value; they add nothing to it.
            if segment.trim().is_empty() {
                continue;
            }
            let starts_entry = segment.len() > 2
                && segment.as_bytes()[0].is_ascii_alphabetic()
                && segment.as_bytes()[1] == b':'
                && segment.contains('=');
            match (starts_entry, entries.last_mut()) {
                (true, _) => {
                    let (key, value) = segment[2..].split_once('=').unwrap_or((&segment[2..], ""));
                    entries.push((key.trim(), value));
                }
                (false, Some((_, value))) => {
                    // Extend the previous value over this `;` and segment, borrowing from `text`.
                    let value_start = value.as_ptr() as usize - text.as_ptr() as usize;
                    *value = &text[value_start..start + segment.len()];
                }
                (false, None) => {}
            }
        }
        CustomData { entries }
    }

    /// The value of the first entry named `key` (case-insensitive).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| *v)
    }

    /// The TLS version of `S:tlsversion=`.
    pub fn tls_version(&self) -> Option<TlsVersion> {
        self.get("tlsversion").and_then(TlsVersion::from_protocol)
    }

    /// The tenant connector named in the entry: `S:InboundConnectorData=Name=…` or
    /// `S:Microsoft.Exchange.Hygiene.TenantOutboundConnectorCustomData=Name=…;ConnectorType=…`.
    pub fn connector(&self, direction: Direction) -> Option<&'a str> {
        let key = match direction {
            Direction::Inbound => INBOUND_CONNECTOR_DATA,
            Direction::Outbound => OUTBOUND_CONNECTOR_DATA,
        };
        self.get(key).and_then(connector_name)
    }
}

/// The connector between an organization's own servers: mail through it has not left.
pub const INTRA_ORGANIZATION_CONNECTOR: &str = "Intra-Organization SMTP Send Connector";

pub const INBOUND_CONNECTOR_DATA: &str = "InboundConnectorData";
pub const OUTBOUND_CONNECTOR_DATA: &str = "Microsoft.Exchange.Hygiene.TenantOutboundConnectorCustomData";

/// `Name=…` in `Name=Partner;ConnectorType=Partner`, trimmed; `None` when empty or absent.
pub fn connector_name(value: &str) -> Option<&str> {
    value.split(';').find_map(|part| part.trim().strip_prefix("Name=")).map(str::trim).filter(|name| !name.is_empty())
}

/// The `(Name, value)` pairs of trace-detail `data`: `<root><MEP Name="ConnectorId"
/// String="…"/><MEP Name="SequenceNumber" Long="0"/>…</root>`, whatever the value attribute is
/// called (`String`, `Integer`, `Long`, `Blob`). XML entities in values are decoded.
///
/// Written by hand because the format is this one flat element repeated: a general XML parser
/// would add a dependency to read two attributes.
pub fn mep_entries(xml: &str) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    for element in xml.split("<MEP").skip(1) {
        // The element ends at the first `>` outside quotes: values may hold `>`.
        let mut quote = None;
        let end = element.char_indices().find_map(|(i, c)| {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '>') => return Some(i),
                _ => {}
            }
            None
        });
        let Some(end) = end else { break };
        let attributes = parse_attributes(&element[..end]);
        let name = attributes.iter().find(|(k, _)| *k == "Name").map(|(_, v)| v.clone());
        let value = attributes.iter().find(|(k, _)| *k != "Name").map(|(_, v)| v.clone());
        if let (Some(name), Some(value)) = (name, value) {
            entries.push((name, value));
        }
    }
    entries
}

fn parse_attributes(mut text: &str) -> Vec<(&str, String)> {
    let mut attributes = Vec::new();
    loop {
        text = text.trim_start();
        let Some(eq) = text.find('=') else { break };
        let key = text[..eq].trim();
        let rest = text[eq + 1..].trim_start();
        let Some(quote) = rest.chars().next().filter(|c| matches!(c, '"' | '\'')) else { break };
        let Some(close) = rest[1..].find(quote) else { break };
        attributes.push((key, unescape_xml(&rest[1..1 + close])));
        text = &rest[close + 2..];
    }
    attributes
}

fn unescape_xml(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether a connector id or name is one of Microsoft's own rather than the tenant's: the
/// receive connectors every Exchange server has (`EXCH01\Default EXCH01`, `EXCH01\Client
/// Submission`, `Default Frontend EXCH01`, Exchange 2010's `Client EXCH01`, an Edge server's
/// `Default internal receive connector EDGE01`, …), Exchange's hop between its own servers
/// (`Intra-Organization SMTP Send Connector`) and Exchange Online's default outbound route
/// (`To_DefaultOpportunisticTLS`). Traffic through them went through no connector.
pub fn is_builtin_connector(id: &str) -> bool {
    let id = id.trim();
    if id.is_empty()
        || id.eq_ignore_ascii_case("To_DefaultOpportunisticTLS")
        || id.eq_ignore_ascii_case(INTRA_ORGANIZATION_CONNECTOR)
    {
        return true;
    }
    // Built-in receive connectors are `SERVER\Client Submission` or `SERVER\<Kind> SERVER`;
    // a bare name is the tenant's own, even one that starts with "Default".
    let Some((server, name)) = id.rsplit_once('\\') else { return false };
    // The server may be logged by its FQDN and named in the connector by its short name.
    let server = server.rsplit('\\').next().unwrap_or(server);
    let short = server.split('.').next().unwrap_or(server);
    if name.eq_ignore_ascii_case("Client Submission") {
        return true;
    }
    const KINDS: [&str; 7] = [
        "Default",
        "Default Frontend",
        "Client Frontend",
        "Client Proxy",
        "Outbound Proxy Frontend",
        "Client",
        "Default internal receive connector",
    ];
    name.rsplit_once(' ').is_some_and(|(kind, host)| {
        (host.eq_ignore_ascii_case(server) || host.eq_ignore_ascii_case(short))
            && KINDS.iter().any(|k| k.eq_ignore_ascii_case(kind))
    })
}

/// Whether a send connector carries mail between an organization's own servers, so mail through
/// it has not left: the implicit `Intra-Organization SMTP Send Connector`, and the connector an
/// Edge subscription creates from the Edge server to the Mailbox servers (`EdgeSync - Inbound to
/// <site>`). Its counterpart `EdgeSync - <site> to Internet` does leave the organization.
pub fn is_internal_send_connector(name: &str) -> bool {
    let name = name.trim();
    name.eq_ignore_ascii_case(INTRA_ORGANIZATION_CONNECTOR)
        || name.get(..EDGESYNC_INBOUND.len()).is_some_and(|p| p.eq_ignore_ascii_case(EDGESYNC_INBOUND))
}

const EDGESYNC_INBOUND: &str = "EdgeSync - Inbound to ";

/// Outbound when the sender's domain is one of `accepted_domains` (or below a `*.` entry),
/// inbound otherwise: how Exchange Online's own reports decide when nothing else says.
pub fn direction_of_sender(sender: &str, accepted_domains: &[String]) -> Direction {
    if is_accepted(sender, accepted_domains) { Direction::Outbound } else { Direction::Inbound }
}

/// Whether the address's domain is one of `accepted_domains`, or below a `*.` entry.
pub fn is_accepted(address: &str, accepted_domains: &[String]) -> bool {
    let domain = address.trim().trim_end_matches('>').rsplit_once('@').map_or("", |(_, d)| d);
    let domain = domain.trim_end_matches('.');
    let below = |parent: &str| {
        domain.len() > parent.len() + 1
            && domain.is_char_boundary(domain.len() - parent.len() - 1)
            && domain[domain.len() - parent.len() - 1..].starts_with('.')
            && domain[domain.len() - parent.len()..].eq_ignore_ascii_case(parent)
    };
    !domain.is_empty()
        && accepted_domains.iter().any(|accepted| match accepted.strip_prefix("*.") {
            Some(parent) => below(parent),
            None => domain.eq_ignore_ascii_case(accepted.trim_end_matches('.')),
        })
}

/// The distinct domains of `addresses`, in the order first seen.
pub fn domains<'a>(addresses: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut domains: Vec<String> = Vec::new();
    for address in addresses {
        if let Some((_, domain)) = address.trim_end_matches('>').rsplit_once('@')
            && !domain.is_empty()
            && !domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
        {
            domains.push(domain.to_ascii_lowercase());
        }
    }
    domains
}

/// A status from a message trace event (`Deliver`, `Send`, `Fail`, `Defer`, …) or a status word
/// of the API and exports (`Delivered`, `Pending`, `Quarantined`, `FilteredAsSpam`, …), in any
/// case and spacing. Quarantined and spam-filtered mail was refused by the filters: rejected.
/// Recalled mail was delivered before its sender recalled it: delivered.
pub fn status(word: &str) -> Option<Status> {
    let word: String = word.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    match word.as_str() {
        "deliver" | "delivered" | "send" | "sent" | "expand" | "expanded" | "transfer" | "redirect" | "resolve"
        | "resolved" | "relayed" | "recalled" => Some(Status::Delivered),
        "defer" | "deferred" | "pending" | "gettingstatus" | "receive" | "received" | "submit" => {
            Some(Status::Deferred)
        }
        "fail" | "failed" | "drop" | "dropped" | "badmail" | "poisonmessage" | "bounce" | "bounced" | "expired" => {
            Some(Status::Failed)
        }
        "reject" | "rejected" | "quarantine" | "quarantined" | "filteredasspam" | "blocked" => Some(Status::Rejected),
        _ => None,
    }
}

/// A message's status from its recipients': delivered if any recipient was, else deferred if
/// any still waits, else failed, else rejected; `None` when no recipient's status is known.
pub fn overall_status(statuses: impl IntoIterator<Item = Status>) -> Option<Status> {
    let rank = |s: &Status| match s {
        Status::Delivered => 3,
        Status::Deferred => 2,
        Status::Failed => 1,
        Status::Rejected => 0,
    };
    statuses.into_iter().max_by_key(rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_versions_in_descriptions() {
        assert_eq!(
            tls_in_description("Message sent to mx.example.net at 192.0.2.1 using TLS1.2 with AES256"),
            Some(TlsVersion::Tls1_2)
        );
        assert_eq!(
            tls_in_description("The message was delivered (TLS 1.3)"),
            None,
            "a lone `TLS` and `1.3` are two words"
        );
        assert_eq!(tls_in_description("Message received by: EXCH01.contoso.com"), None);
        // Markup and punctuation around the version, as descriptions write it.
        for description in [
            "Message sent to mx.example.net at 192.0.2.1 using **TLS1.2** with **AES256**",
            "The message was delivered (TLS1.2)",
            "Sent using TLS1.2, AES256",
            "Sent using TLS1.2.",
            "Sent using \"TLS1_2\"; cipher AES256",
            "Sent using [SP_PROT_TLS1_2_CLIENT]",
        ] {
            assert_eq!(tls_in_description(description), Some(TlsVersion::Tls1_2), "{description}");
        }
        assert_eq!(tls_in_description("negotiated (**SSLv3**)"), Some(TlsVersion::Ssl3));
        assert_eq!(tls_in_description("**TLS** 1.2, (TLS), TLS:"), None, "no version after the name");
        assert_eq!(tls_in_description("**TLSRPT** report (tls-ok)"), None);
    }

    #[test]
    fn custom_data_values_may_hold_semicolons() {
        let data = CustomData::parse(
            "S:ProxyHop1=EOP01(10.1.1.1);S:Microsoft.Exchange.Hygiene.TenantOutboundConnectorCustomData=Name=To Partner;ConnectorType=Partner;UseMxRecord=False;S:tlsversion=SP_PROT_TLS1_3_CLIENT;S:tlscipher=CALG_AES_256",
        );
        assert_eq!(data.connector(Direction::Outbound), Some("To Partner"));
        assert_eq!(data.get(OUTBOUND_CONNECTOR_DATA), Some("Name=To Partner;ConnectorType=Partner;UseMxRecord=False"));
        assert_eq!(data.tls_version(), Some(TlsVersion::Tls1_3));
        assert_eq!(data.get("TLSCIPHER"), Some("CALG_AES_256"));
        assert_eq!(data.connector(Direction::Inbound), None);

        let inbound =
            CustomData::parse("S:InboundConnectorData=Name=From Partner;ConnectorType=Partner;S:tlsversion=TLS1_2");
        assert_eq!(inbound.connector(Direction::Inbound), Some("From Partner"));
        assert_eq!(CustomData::parse("garbage;;=;S:"), CustomData::default());
        let trailing = CustomData::parse("S:tlsversion=SP_PROT_TLS1_2_SERVER;;S:x=1;");
        assert_eq!((trailing.tls_version(), trailing.get("x")), (Some(TlsVersion::Tls1_2), Some("1")));
    }

    #[test]
    fn mep_entries_read_any_value_attribute_and_entities() {
        let xml = r#"<root><MEP Name="ConnectorId" String="EXCH01\Default EXCH01" /><MEP Name="SequenceNumber" Long="0"/><MEP Name="CustomData" Blob="S:InboundConnectorData=Name=A &amp; B;S:tlsversion=TLS1_2" /><MEP Name="Broken String="x"/></root>"#;
        let entries = mep_entries(xml);
        assert_eq!(entries[0], ("ConnectorId".into(), r"EXCH01\Default EXCH01".into()));
        assert_eq!(entries[1], ("SequenceNumber".into(), "0".into()));
        assert_eq!(CustomData::parse(&entries[2].1).connector(Direction::Inbound), Some("A & B"));
        assert_eq!(entries.len(), 3, "{entries:?}");
        assert_eq!(mep_entries("<MEP Name=\"x\" String=\"&#x41;&#66;&bogus;&\"/>")[0].1, "AB&bogus;&");
        assert!(mep_entries("<MEP").is_empty());
        let quoted = mep_entries(r#"<MEP Name="Reply" String="550 5.7.1 <x@y> refused" /><MEP Name="B" Long="1"/>"#);
        assert_eq!(quoted, [("Reply".into(), "550 5.7.1 <x@y> refused".into()), ("B".into(), "1".into())]);
    }

    #[test]
    fn builtin_connectors_are_no_connector() {
        for id in [
            r"EXCH01\Default EXCH01",
            r"BN8PR01MB1234\Client Submission",
            r"EX2\Default Frontend EX2",
            r"DM6PR11MB4396.namprd11.prod.outlook.com\Default DM6PR11MB4396",
            r"EX10\Client EX10",
            r"EDGE01\Default internal receive connector EDGE01",
            "Intra-Organization SMTP Send Connector",
            "To_DefaultOpportunisticTLS",
            "",
        ] {
            assert!(is_builtin_connector(id), "{id}");
        }
        for id in [
            "From Partner",
            "Default Frontend EX2",
            r"EX2\Default Partner",
            r"EXCH01\Partner inbound",
            "Outbound to Contoso",
            r"EX10\Client EX11",
            r"EDGE01\Default internal receive connector",
        ] {
            assert!(!is_builtin_connector(id), "{id}");
        }
    }

    #[test]
    fn internal_send_connectors() {
        for name in ["Intra-Organization SMTP Send Connector", "EdgeSync - Inbound to Default-First-Site-Name"] {
            assert!(is_internal_send_connector(name), "{name}");
        }
        for name in ["EdgeSync - Default-First-Site-Name to Internet", "Outbound to Internet", "", "EdgeSync - In"] {
            assert!(!is_internal_send_connector(name), "{name}");
        }
    }

    proptest::proptest! {
        /// Every reader takes any text an API page or export may carry without panicking.
        #[test]
        fn any_text_reads_without_panicking(text in "(?s)([<>\"'=;:&#\\/ .SMEPNamTLSv1_23é\u{1F600}]|[a-z]){0,80}", any in ".*") {
            for input in [&text, &any] {
                let _ = TlsVersion::from_protocol(input);
                let _ = tls_in_description(input);
                let data = CustomData::parse(input);
                let _ = (data.tls_version(), data.connector(Direction::Inbound), data.connector(Direction::Outbound));
                let _ = mep_entries(input);
                let _ = is_builtin_connector(input);
                let _ = is_internal_send_connector(input);
                let _ = direction_of_sender(input, &["é.example".to_string(), "*.x".to_string()]);
                let _ = status(input);
            }
        }
    }

    #[test]
    fn statuses_combine_best_first() {
        use Status::*;
        assert_eq!(overall_status([Failed, Delivered]), Some(Delivered));
        assert_eq!(overall_status([Failed, Deferred]), Some(Deferred));
        assert_eq!(overall_status([Rejected, Failed]), Some(Failed));
        assert_eq!(overall_status([]), None);
        assert_eq!(status("GettingStatus"), Some(Deferred));
        assert_eq!(status("filteredAsSpam"), Some(Rejected));
        assert_eq!(status("Send external"), None, "an event name, not a status");
        assert_eq!(status("SpamDiagnostic"), None);
        assert_eq!(status("recalled"), Some(Delivered), "delivered, then recalled by its sender");
        assert_eq!(status("unknownFutureValue"), None);
    }

    #[test]
    fn direction_from_accepted_domains() {
        let accepted = vec!["corp.example".to_string(), "*.group.example".to_string()];
        assert_eq!(direction_of_sender("Alice@CORP.example", &accepted), Direction::Outbound);
        assert_eq!(direction_of_sender("a@eu.group.example", &accepted), Direction::Outbound);
        assert_eq!(direction_of_sender("a@group.example", &accepted), Direction::Inbound);
        assert_eq!(direction_of_sender("a@evilcorp.example", &accepted), Direction::Inbound);
        assert_eq!(direction_of_sender("a@xgroup.example", &accepted), Direction::Inbound);
        assert_eq!(direction_of_sender("<>", &accepted), Direction::Inbound);
        assert_eq!(direction_of_sender("a@é.group.example", &accepted), Direction::Outbound);
    }
}
