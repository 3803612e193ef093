//! CSV rows → canonical events. Each row becomes the JSON object of the JSON Lines form, so the
//! same serde model validates both.

use std::io::BufRead;

use mailflow_component::{CollectError, Emitter};
use mailflow_core::MessageEvent;
use serde_json::{Map, Value};

/// Every column the CSV form knows: the canonical fields, nested names joined with dots.
pub const COLUMNS: &[&str] = &[
    "time",
    "direction",
    "connector",
    "tls.version",
    "tls.cipher",
    "tls.trust",
    "peer.host",
    "peer.ip",
    "peer.port",
    "service",
    "transport",
    "sender",
    "recipients",
    "recipient_domains",
    "size",
    "status",
    "message_id",
    "queue_id",
    "source",
    "evidence.file",
    "evidence.line",
    "evidence.page",
];

const NUMERIC: &[&str] = &["peer.port", "recipients", "size", "evidence.line"];

pub fn read(
    reader: Box<dyn BufRead + Send>,
    name: &str,
    max_record_bytes: usize,
    out: &mut Emitter<'_>,
) -> Result<(), CollectError> {
    let reader = LineLimit { inner: reader, max_bytes: max_record_bytes, line_bytes: 0, over: false };
    let mut csv = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(reader);
    let headers =
        csv.headers().map_err(|e| CollectError::Other(format!("{name}:1: cannot read the CSV header: {e}")))?.clone();
    let columns: Vec<String> = headers.iter().map(|h| h.trim().to_string()).collect();
    if columns.is_empty() || (columns.len() == 1 && columns[0].is_empty()) {
        return Ok(()); // An empty file: no header, no events.
    }
    if let Some((i, dup)) = columns.iter().enumerate().find(|(i, c)| columns[..*i].contains(c)) {
        return Err(CollectError::Other(format!("{name}:1: column `{dup}` appears twice (column {})", i + 1)));
    }
    if let Some(unknown) = columns.iter().find(|c| !COLUMNS.contains(&c.as_str())) {
        return Err(CollectError::Other(format!(
            "{name}:1: unknown column `{unknown}`; the CSV event format has the columns {}",
            COLUMNS.join(", ")
        )));
    }
    for required in ["time", "direction"] {
        if !columns.iter().any(|c| c == required) {
            return Err(CollectError::Other(format!(
                "{name}:1: the header has no `{required}` column, which every event needs"
            )));
        }
    }

    let mut record = csv::ByteRecord::new();
    loop {
        let result = csv.read_byte_record(&mut record);
        let line = match &result {
            Err(e) => e.position().map(|p| p.line()),
            Ok(_) => record.position().map(|p| p.line()),
        }
        .unwrap_or_else(|| csv.position().line());
        let at = || format!("{name}:{line}");
        match result {
            Ok(false) => return Ok(()),
            Ok(true) if record.as_slice().len() > max_record_bytes => {
                out.skip(
                    at(),
                    format!("record of {} bytes is over max_line_bytes ({max_record_bytes})", record.as_slice().len()),
                );
            }
            Ok(true) => match row_to_event(&columns, &record) {
                Ok(event) => out.event(crate::with_evidence(event, name, line)),
                Err(why) => out.skip(at(), why),
            },
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                return Err(CollectError::Other(format!("{}: {e}", at())));
            }
            Err(e) => out.skip(at(), format!("not a valid CSV record: {e}")),
        }
    }
}

/// Fails the read when one physical line passes `max_bytes`: the csv crate buffers a whole
/// record, so without this a runaway line would be held in memory whole. The bytes before the
/// runaway line are passed on first, so the records before it still count.
struct LineLimit<R> {
    inner: R,
    max_bytes: usize,
    line_bytes: usize,
    over: bool,
}

impl<R: std::io::Read> std::io::Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let too_long = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a line is longer than max_line_bytes ({}); the rest of the file is not read", self.max_bytes),
            )
        };
        if self.over {
            return Err(too_long());
        }
        let n = self.inner.read(buf)?;
        for (i, byte) in buf[..n].iter().enumerate() {
            self.line_bytes = if *byte == b'\n' { 0 } else { self.line_bytes + 1 };
            if self.line_bytes > self.max_bytes {
                self.over = true;
                return if i == 0 { Err(too_long()) } else { Ok(i) };
            }
        }
        Ok(n)
    }
}

fn row_to_event(columns: &[String], record: &csv::ByteRecord) -> Result<MessageEvent, String> {
    let mut object = Map::new();
    for (column, cell) in columns.iter().zip(record.iter()) {
        let cell = std::str::from_utf8(cell).map_err(|_| format!("column `{column}` is not valid UTF-8"))?.trim();
        if cell.is_empty() {
            continue;
        }
        let value = if column == "recipient_domains" {
            cell.split(';').map(str::trim).filter(|d| !d.is_empty()).map(|d| Value::String(d.into())).collect()
        } else if NUMERIC.contains(&column.as_str()) {
            // Not a number: keep the text so the model's error names the expected type.
            cell.parse::<u64>().map_or_else(|_| Value::String(cell.into()), Value::from)
        } else {
            Value::String(cell.into())
        };
        match column.split_once('.') {
            Some((outer, inner)) => {
                let nested = object.entry(outer).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(nested) = nested {
                    nested.insert(inner.to_string(), value);
                }
            }
            None => {
                object.insert(column.clone(), value);
            }
        }
    }
    // The CSV form holds one evidence location; the model holds a list.
    if let Some(location) = object.remove("evidence") {
        object.insert("evidence".to_string(), Value::Array(vec![location]));
    }
    serde_json::from_value(Value::Object(object)).map_err(|e| format!("expected a canonical event: {e}"))
}
