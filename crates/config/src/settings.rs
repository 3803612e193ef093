//! A component's `settings`: any table, which mailflow does not read but hands on, as JSON, to
//! a program (`exec`) or a plugin library (`plugin`). Both get the same JSON for the same TOML.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// The `settings` table. `Debug` shows its keys, never its values: they may be secrets.
#[derive(Clone, Default, PartialEq)]
pub struct Settings(toml::Table);

impl Settings {
    /// The table as JSON. TOML dates and times become their RFC 3339 text; NaN and infinity,
    /// which JSON cannot hold, are an error naming the key.
    pub fn to_json(&self) -> Result<serde_json::Value, String> {
        table_json(&self.0, None)
    }
}

fn convert(value: &toml::Value, path: &str) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .ok_or_else(|| format!("`settings.{path}` is {f}, which JSON cannot hold"))?,
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(
            items.iter().enumerate().map(|(i, v)| convert(v, &format!("{path}[{i}]"))).collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => table_json(table, Some(path))?,
    })
}

fn table_json(table: &toml::Table, path: Option<&str>) -> Result<serde_json::Value, String> {
    let mut map = serde_json::Map::new();
    for (key, value) in table {
        let path = path.map_or_else(|| key.clone(), |p| format!("{p}.{key}"));
        map.insert(key.clone(), convert(value, &path)?);
    }
    Ok(serde_json::Value::Object(map))
}

/// A table, or an error that says so in TOML's words.
impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::Table(table) => Ok(Settings(table)),
            other => {
                let kind = other.type_str();
                let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
                Err(serde::de::Error::custom(format!(
                    "`settings` must be a table, like settings = {{ path = \"/var/log/gw.csv\" }}, not {article} {kind}"
                )))
            }
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_json_with_dates_as_text() {
        let settings: Settings = toml::from_str(
            "path = \"/var/log/x\"\nport = 25\nratio = 0.5\non = true\nsince = 2026-12-01T08:00:00Z\n\
             day = 2026-12-01\nlist = [1, \"a\"]\n[nested]\nkey = \"v\"\n",
        )
        .unwrap();
        assert_eq!(
            settings.to_json().unwrap(),
            serde_json::json!({
                "path": "/var/log/x", "port": 25, "ratio": 0.5, "on": true,
                "since": "2026-12-01T08:00:00Z", "day": "2026-12-01",
                "list": [1, "a"], "nested": {"key": "v"}
            })
        );
        let settings: Settings = toml::from_str("[a]\nb = [1.0, nan]\n").unwrap();
        assert_eq!(settings.to_json().unwrap_err(), "`settings.a.b[1]` is NaN, which JSON cannot hold");
        assert_eq!(format!("{settings:?}"), "{\"a\"}", "keys only");
    }
}
