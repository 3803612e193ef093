//! The syslog header in front of every message of an MTA that logs through syslog (Postfix,
//! Sendmail, OpenSMTPD), in the forms it reaches files:
//! traditional BSD syslog (`Dec  4 15:00:00 host postfix/smtpd[123]: …`), Postfix's own
//! `maillog_file` (`Dec 04 15:00:00 …`), RFC 3339 stamps as rsyslog writes them
//! (`2026-12-04T15:05:07.910102+00:00 host …`) and RFC 5424 (`<22>1 2026-… host app pid - - …`).
//!
//! Parsing is by hand over bytes: this runs once per log line and must not allocate.
//! Year-less stamps are local wall-clock time; [`Clock`] (shared with other collectors, in
//! `mailflow_component::clock`) gives them a year and an offset.

pub use crate::clock::{Clock, Stamp, YearRule};
use crate::clock::{bsd_stamp, clock_time, days_from_civil, days_in_month};

/// A parsed header; `message` is what the program wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub stamp: Stamp,
    pub host: &'a [u8],
    /// The syslog tag without the pid, e.g. `postfix/submission/smtpd`.
    pub program: &'a [u8],
    pub pid: u32,
    pub message: &'a [u8],
}

pub fn parse(line: &[u8]) -> Result<Header<'_>, &'static str> {
    let mut rest = line;
    if rest.first() == Some(&b'<') {
        let end = rest.iter().take(6).position(|&b| b == b'>').ok_or("a syslog priority like <22> to end with '>'")?;
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(b"1 ") {
            return rfc5424(after);
        }
    }
    let (stamp, rest) = if rest.first().is_some_and(u8::is_ascii_digit) { rfc3339(rest)? } else { bsd_stamp(rest)? };
    let rest = rest.strip_prefix(b" ").ok_or("a space after the timestamp")?;
    let (host, rest) = word(rest).ok_or("a host name after the timestamp")?;
    let (program, pid, message) = tag(rest)?;
    Ok(Header { stamp, host, program, pid, message })
}

/// `<PRI>1 TIMESTAMP HOST APP-NAME PROCID MSGID STRUCTURED-DATA MSG`, after the `<PRI>1 `.
fn rfc5424(rest: &[u8]) -> Result<Header<'_>, &'static str> {
    let (stamp, rest) = rfc3339(rest)?;
    let rest = rest.strip_prefix(b" ").ok_or("a space after the timestamp")?;
    let (host, rest) = word(rest).ok_or("a host name after the timestamp")?;
    let (program, rest) = word(rest).ok_or("an APP-NAME after the host name")?;
    let (procid, rest) = word(rest).ok_or("a PROCID after the APP-NAME")?;
    let (_msgid, mut rest) = word(rest).ok_or("a MSGID after the PROCID")?;
    if let Some(after) = rest.strip_prefix(b"-") {
        rest = after;
    } else {
        while rest.first() == Some(&b'[') {
            rest = skip_sd_element(rest).ok_or("STRUCTURED-DATA elements to end with ']'")?;
        }
    }
    let message = rest.strip_prefix(b" ").unwrap_or(rest);
    let message = message.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(message);
    Ok(Header { stamp, host, program, pid: digits(procid).unwrap_or(0) as u32, message })
}

/// Skips one `[id param="value" …]`, where values may hold escaped `\]` and `\"`.
fn skip_sd_element(rest: &[u8]) -> Option<&[u8]> {
    let mut escaped = false;
    let mut quoted = false;
    for (i, &b) in rest.iter().enumerate().skip(1) {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => quoted = !quoted,
            b']' if !quoted => return Some(&rest[i + 1..]),
            _ => {}
        }
    }
    None
}

/// `2026-12-04T15:05:07.910102+00:00` or `…Z`.
fn rfc3339(rest: &[u8]) -> Result<(Stamp, &[u8]), &'static str> {
    const WANT: &str = "an RFC 3339 timestamp like \"2026-12-04T15:00:00+01:00\"";
    if rest.len() < 20 || rest[4] != b'-' || rest[7] != b'-' || !matches!(rest[10], b'T' | b't' | b' ') {
        return Err(WANT);
    }
    let year = digits(&rest[0..4]).ok_or(WANT)? as i64;
    let (month, day) = (two(&rest[5..7]).ok_or(WANT)?, two(&rest[8..10]).ok_or(WANT)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err("a valid calendar date");
    }
    let (second_of_day, micros, rest) = clock_time(&rest[11..]).ok_or(WANT)?;
    let (offset_secs, rest) = match rest.first() {
        Some(b'Z' | b'z') => (0, &rest[1..]),
        Some(&sign @ (b'+' | b'-')) if rest.len() >= 6 && rest[3] == b':' => {
            let (h, m) = (two(&rest[1..3]).ok_or(WANT)?, two(&rest[4..6]).ok_or(WANT)?);
            let secs = i64::from(h * 3600 + m * 60);
            (if sign == b'-' { -secs } else { secs }, &rest[6..])
        }
        // No offset: local time, as some syslog templates write it.
        _ => {
            let seconds = days_from_civil(year, month, day) * 86_400 + i64::from(second_of_day);
            return Ok((Stamp::Wall { seconds, micros }, rest));
        }
    };
    let local = days_from_civil(year, month, day) * 86_400 + i64::from(second_of_day);
    Ok((Stamp::Instant((local - offset_secs) * 1_000_000 + i64::from(micros)), rest))
}

/// `program[pid]: message` or `program: message`.
fn tag(rest: &[u8]) -> Result<(&[u8], u32, &[u8]), &'static str> {
    const WANT: &str = "a syslog tag like \"postfix/smtpd[123]:\"";
    let end = memchr::memchr3(b'[', b':', b' ', rest).ok_or(WANT)?;
    let program = &rest[..end];
    if program.is_empty() {
        return Err(WANT);
    }
    let (pid, rest) = match rest[end] {
        b'[' => {
            let close = rest[end..].iter().position(|&b| b == b']').ok_or(WANT)? + end;
            let pid = digits(&rest[end + 1..close]).filter(|&p| p <= u64::from(u32::MAX)).ok_or(WANT)?;
            (pid as u32, rest[close + 1..].strip_prefix(b":").ok_or(WANT)?)
        }
        b':' => (0, &rest[end + 1..]),
        _ => return Err(WANT),
    };
    Ok((program, pid, rest.strip_prefix(b" ").unwrap_or(rest)))
}

/// The next space-separated word and what follows its space.
fn word(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr::memchr(b' ', rest)?;
    (end > 0).then(|| (&rest[..end], &rest[end + 1..]))
}

fn two(b: &[u8]) -> Option<u32> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(c - b'0')),
        _ => None,
    }
}

/// The number the bytes start with, and what follows it; `None` without a leading digit.
pub fn leading_number(b: &[u8]) -> (Option<u64>, &[u8]) {
    let n = b.iter().take_while(|d| d.is_ascii_digit()).count();
    (digits(&b[..n]), &b[n..])
}

/// A short run of ASCII digits as a number; `None` for anything else.
pub fn digits(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    b.iter().try_fold(0u64, |n, &d| d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_micros()
    }

    #[test]
    fn reads_every_header_form() {
        let h = parse(b"Dec  4 15:00:00 mx postfix/smtpd[123]: connect from x[192.0.2.1]").unwrap();
        assert_eq!(h.stamp, Stamp::Local { month: 12, day: 4, second_of_day: 54_000, micros: 0 });
        assert_eq!((h.host, h.program, h.pid), (&b"mx"[..], &b"postfix/smtpd"[..], 123));
        assert_eq!(h.message, b"connect from x[192.0.2.1]");
        let h = parse(b"Dec 04 15:00:00 mx postfix/qmgr[9]: ABC: removed").unwrap();
        assert_eq!(h.stamp, Stamp::Local { month: 12, day: 4, second_of_day: 54_000, micros: 0 });
        let h = parse(b"2026-12-04T15:05:07.910102+01:00 gw1 postfix/smtp[77]: x").unwrap();
        assert_eq!(h.stamp, Stamp::Instant(at("2026-12-04T15:05:07.910102+01:00")));
        let h = parse(b"2026-12-04T15:05:07.5 gw1 postfix/smtpd[77]: x").unwrap();
        assert_eq!(h.stamp, Stamp::Wall { seconds: at("2026-12-04T15:05:07Z") / 1_000_000, micros: 500_000 });
        let mut berlin = Clock::new(chrono_tz::Europe::Berlin, YearRule::starting(2026));
        assert_eq!(berlin.instant(h.stamp), Some(at("2026-12-04T14:05:07.5Z")));
        let h =
            parse(b"<22>1 2026-12-04T15:05:07Z gw1 postfix/smtpd 4242 - [origin x=\"a]\"] \xEF\xBB\xBFhello").unwrap();
        assert_eq!((h.program, h.pid, h.message), (&b"postfix/smtpd"[..], 4242, &b"hello"[..]));
        let h = parse(b"<22>Dec  4 15:00:00 mx postfix/postfix-script: starting").unwrap();
        assert_eq!((h.program, h.pid, h.message), (&b"postfix/postfix-script"[..], 0, &b"starting"[..]));
    }

    #[test]
    fn rejects_what_is_not_a_header() {
        for bad in [
            &b""[..],
            b"hello world",
            b"Dec 44 15:00:00 mx p[1]: x",
            b"Dec  4 25:00:00 mx p[1]: x",
            b"2026-02-30T00:00:00Z mx p[1]: x",
            b"Dec  4 15:00:00 mx p[1",
            b"Dec  4 15:00:00 mx p[x]: y",
            b"<22",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
