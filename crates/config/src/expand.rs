//! `${VAR}` expansion inside parsed string values.

use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use crate::Env;

/// Expands every string in `value`; records each variable it read in `used`.
pub(crate) fn expand_value(
    value: &mut Spanned<DeValue<'_>>,
    env: Env<'_>,
    used: &mut Vec<(String, String)>,
) -> Result<(), (Range<usize>, String)> {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) if s.contains('$') => {
            let expanded = expand(s, env, used).map_err(|m| (span, m))?;
            *s = expanded.into();
        }
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                expand_value(item, env, used)?;
            }
        }
        DeValue::Table(table) => {
            for (_, item) in table.iter_mut() {
                expand_value(item, env, used)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `${VAR}`, `${VAR:-default}` (default when unset or empty), `$${` for a literal `${`.
pub(crate) fn expand(s: &str, env: Env<'_>, used: &mut Vec<(String, String)>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(literal) = after.strip_prefix("${") {
            out.push_str("${");
            rest = literal;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("`${{` without a closing `}}` in \"{s}\"; write `$${{` for a literal `${{`"))?;
            let (name, default) = match body[..end].split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (&body[..end], None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{}}}` is not a valid variable name (letters, digits and `_`)", &body[..end]));
            }
            let value = env(name).filter(|v| default.is_none() || !v.is_empty());
            let value = match (value, default) {
                (Some(v), _) => {
                    used.push((name.to_string(), v.clone()));
                    v
                }
                (None, Some(d)) => d.to_string(),
                (None, None) => {
                    return Err(format!(
                        "environment variable `{name}` is not set; set it, or give a default as `${{{name}:-value}}`"
                    ));
                }
            };
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("mx.example".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(s: &str) -> Result<String, String> {
        expand(s, &env, &mut Vec::new())
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(run("smtp://${HOST}:25").unwrap(), "smtp://mx.example:25");
        assert_eq!(run("${MISSING:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${EMPTY}x").unwrap(), "x");
        assert_eq!(run("$${HOST} costs $5").unwrap(), "${HOST} costs $5");
        assert_eq!(run("${HOST:-}").unwrap(), "mx.example");
    }

    #[test]
    fn missing_or_malformed_variables_are_errors() {
        assert!(run("${MISSING}").unwrap_err().contains("`MISSING` is not set"));
        assert!(run("${HOST").unwrap_err().contains("closing"));
        assert!(run("${A B}").unwrap_err().contains("not a valid variable name"));
    }
}
