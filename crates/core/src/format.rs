//! Formatting shared by every human-facing output (terminal, HTML, email): numbers, and names
//! from logs made safe to print.

/// `1234567` → `"1,234,567"`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as a percentage with one decimal, except whole numbers: `0.25` → `"25%"`,
/// `0.312` → `"31.2%"`.
pub fn percent(share: f64) -> String {
    let p = share * 100.0;
    if (p - p.round()).abs() < 1e-9 { format!("{}%", p.round()) } else { format!("{p:.1}%") }
}

/// Escapes control, bidirectional-override, invisible and line-separator characters: an ANSI
/// escape, a U+202E or a U+2028 in a host name must not reach a terminal or a plain-text mail,
/// where it could recolour, reorder, hide or break what the admin reads.
pub fn printable(s: &str) -> String {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
            )
    };
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// [`printable`], shortened to `width` characters with the cut marked by `…`.
pub fn fit(s: &str, width: usize) -> String {
    let s = printable(s);
    if s.chars().count() <= width { s } else { s.chars().take(width.saturating_sub(1)).chain(['…']).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(percent(0.25), "25%");
        assert_eq!(percent(0.312), "31.2%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(1.0), "100%");
    }

    #[test]
    fn control_characters_are_escaped_and_long_names_cut() {
        assert_eq!(printable("mx\u{1b}[31m.example\n"), "mx\\u{1b}[31m.example\\n");
        assert_eq!(printable("evil\u{202E}gnp.exe"), "evil\\u{202e}gnp.exe");
        assert_eq!(printable("a\u{2028}b\u{200B}c\u{FEFF}"), "a\\u{2028}b\\u{200b}c\\u{feff}");
        assert_eq!(fit("a-very-long-connector-name-indeed", 10), "a-very-lo…");
        assert_eq!(fit("short", 10), "short");
    }
}
