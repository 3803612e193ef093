//! Bytes → UTF-8 for the CSV reader. Microsoft's exports are UTF-16LE (with or without a
//! byte-order mark) as often as UTF-8, and can be gigabytes, so the text is transcoded a buffer at
//! a time. Invalid sequences become U+FFFD and are counted, so a damaged file still reads.
//!
//! The same pass caps the size of a CSV record: the csv crate holds a whole record in memory, and
//! an unclosed quote would otherwise make the rest of the file one record.

use std::io::{self, BufRead, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
        }
    }
}

/// Enough of the header to tell UTF-16 by its zero bytes.
const HEAD_BYTES: usize = 256;

pub struct Decoder {
    inner: Box<dyn BufRead + Send>,
    pub encoding: Encoding,
    /// Sequences replaced by U+FFFD so far.
    pub invalid: u64,
    /// Undecoded bytes: the head read for detection, then an incomplete sequence at a buffer's end.
    carry: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    eof: bool,
    max_record_bytes: usize,
    record_bytes: usize,
    field: Field,
    over: bool,
}

/// Where the text is in CSV terms, as the csv crate reads it: a quote opens a quoted field only
/// at the start of a field; elsewhere it is a literal character (`27" monitor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// At the start of a field.
    Start,
    /// In a field that did not start with a quote, or after a quoted field's closing quote.
    Unquoted,
    Quoted,
    /// A quote in a quoted field: it closes the field unless another quote follows (`""`).
    AfterQuote,
}

impl Decoder {
    /// Reads the first bytes to decide the encoding: a byte-order mark, else the pattern of zero
    /// bytes (an ASCII header in UTF-16LE is every second byte zero), else UTF-8.
    pub fn new(mut inner: Box<dyn BufRead + Send>, max_record_bytes: usize) -> io::Result<Self> {
        let mut head = Vec::with_capacity(HEAD_BYTES);
        (&mut inner).take(HEAD_BYTES as u64).read_to_end(&mut head)?;
        let (encoding, bom) = match head.as_slice() {
            [0xEF, 0xBB, 0xBF, ..] => (Encoding::Utf8, 3),
            [0xFF, 0xFE, ..] => (Encoding::Utf16Le, 2),
            [0xFE, 0xFF, ..] => (Encoding::Utf16Be, 2),
            _ => {
                let pairs = head.chunks_exact(2);
                let total = pairs.len();
                let le = pairs.clone().filter(|p| p[0] != 0 && p[1] == 0).count();
                let be = pairs.filter(|p| p[0] == 0 && p[1] != 0).count();
                match () {
                    _ if total > 0 && le * 2 > total => (Encoding::Utf16Le, 0),
                    _ if total > 0 && be * 2 > total => (Encoding::Utf16Be, 0),
                    _ => (Encoding::Utf8, 0),
                }
            }
        };
        head.drain(..bom);
        Ok(Decoder {
            inner,
            encoding,
            invalid: 0,
            carry: head,
            out: Vec::new(),
            pos: 0,
            eof: false,
            max_record_bytes,
            record_bytes: 0,
            field: Field::Start,
            over: false,
        })
    }

    /// Decodes the next buffer of input into `out`, which stays empty at the end.
    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        while self.out.is_empty() {
            if self.eof {
                return Ok(());
            }
            let chunk = self.inner.fill_buf()?;
            self.eof = chunk.is_empty();
            self.carry.extend_from_slice(chunk);
            let n = chunk.len();
            self.inner.consume(n);
            let bytes = std::mem::take(&mut self.carry);
            let used = match self.encoding {
                Encoding::Utf8 => self.utf8(&bytes),
                Encoding::Utf16Le => self.utf16(&bytes, u16::from_le_bytes),
                Encoding::Utf16Be => self.utf16(&bytes, u16::from_be_bytes),
            };
            self.carry = bytes;
            self.carry.drain(..used);
        }
        self.cap_records();
        Ok(())
    }

    /// Appends the valid UTF-8 of `bytes` to `out`; returns how many bytes were used (all but an
    /// incomplete character at the end, unless the input ended).
    fn utf8(&mut self, bytes: &[u8]) -> usize {
        let end = if self.eof { bytes.len() } else { complete_utf8(bytes) };
        for chunk in bytes[..end].utf8_chunks() {
            self.out.extend_from_slice(chunk.valid().as_bytes());
            if !chunk.invalid().is_empty() {
                self.replacement();
            }
        }
        end
    }

    fn utf16(&mut self, bytes: &[u8], unit: fn([u8; 2]) -> u16) -> usize {
        let mut end = bytes.len() & !1;
        // A high surrogate at the end may pair with the next buffer's first unit.
        if !self.eof && end >= 2 && (0xD800..0xDC00).contains(&unit([bytes[end - 2], bytes[end - 1]])) {
            end -= 2;
        }
        let units = bytes[..end].chunks_exact(2).map(|p| unit([p[0], p[1]]));
        for c in char::decode_utf16(units) {
            match c {
                Ok(c) if c.is_ascii() => self.out.push(c as u8),
                Ok(c) => self.out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                Err(_) => self.replacement(),
            }
        }
        if self.eof && end < bytes.len() {
            self.replacement(); // An odd last byte.
            return bytes.len();
        }
        end
    }

    fn replacement(&mut self) {
        self.invalid += 1;
        self.out.extend_from_slice("\u{FFFD}".as_bytes());
    }

    /// Ends the text before a record grows past `max_record_bytes`. Records end at a `\n` outside
    /// a quoted field, as the reader is told.
    fn cap_records(&mut self) {
        for (i, &byte) in self.out.iter().enumerate() {
            self.field = match (self.field, byte) {
                (Field::Quoted, b'"') => Field::AfterQuote,
                (Field::Quoted, _) => Field::Quoted,
                (Field::Start, b'"') | (Field::AfterQuote, b'"') => Field::Quoted,
                (_, b',') => Field::Start,
                (_, b'\n') => {
                    self.record_bytes = 0;
                    Field::Start
                }
                _ => Field::Unquoted,
            };
            self.record_bytes += 1;
            if self.record_bytes > self.max_record_bytes {
                self.over = true;
                self.out.truncate(i);
                return;
            }
        }
    }
}

/// Where an incomplete UTF-8 character at the end of `bytes` starts (or `bytes.len()`).
fn complete_utf8(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte < 0x80 {
            break;
        }
        if byte >= 0xC0 {
            let len = if byte >= 0xF0 {
                4
            } else if byte >= 0xE0 {
                3
            } else {
                2
            };
            return if back < len { bytes.len() - back } else { bytes.len() };
        }
    }
    bytes.len()
}

impl Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.out.len() {
            if !self.over {
                self.refill()?;
            }
            if self.pos == self.out.len() {
                if !self.over {
                    return Ok(0);
                }
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "a CSV record is longer than max_record_bytes ({}), perhaps from an unclosed quote; \
                         the rest of the file is not read",
                        self.max_record_bytes
                    ),
                ));
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: Vec<u8>, chunk: usize) -> (Encoding, String, u64) {
        let reader = std::io::BufReader::with_capacity(chunk, std::io::Cursor::new(bytes));
        let mut decoder = Decoder::new(Box::new(reader), 1 << 20).unwrap();
        let mut text = String::new();
        decoder.read_to_string(&mut text).unwrap();
        (decoder.encoding, text, decoder.invalid)
    }

    fn utf16(text: &str, big: bool) -> Vec<u8> {
        text.encode_utf16().flat_map(|u| if big { u.to_be_bytes() } else { u.to_le_bytes() }).collect()
    }

    #[test]
    fn every_encoding_and_buffer_split_reads_the_same_text() {
        let text = "date_time_utc,sender\n2026-11-30,\"Zoë 😀 Ünal\" <z@contoso.example>\n".repeat(20);
        for chunk in [1, 2, 3, 5, 64, 8192] {
            let bom_le = [&[0xFF, 0xFE][..], &utf16(&text, false)].concat();
            let bom_be = [&[0xFE, 0xFF][..], &utf16(&text, true)].concat();
            let bom_8 = [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat();
            for (bytes, encoding) in [
                (bom_le, Encoding::Utf16Le),
                (utf16(&text, false), Encoding::Utf16Le),
                (bom_be, Encoding::Utf16Be),
                (utf16(&text, true), Encoding::Utf16Be),
                (bom_8, Encoding::Utf8),
                (text.as_bytes().to_vec(), Encoding::Utf8),
            ] {
                assert_eq!(decode(bytes, chunk), (encoding, text.clone(), 0), "chunk {chunk}, {encoding:?}");
            }
        }
    }

    #[test]
    fn invalid_sequences_are_replaced_and_counted() {
        let mut le = utf16("a,b\n", false);
        le.extend_from_slice(&0xD800u16.to_le_bytes()); // A lone high surrogate…
        le.extend_from_slice(&utf16("x\n", false));
        le.push(b'y'); // …and an odd last byte.
        assert_eq!(decode(le, 3), (Encoding::Utf16Le, "a,b\n\u{FFFD}x\n\u{FFFD}".into(), 2));
        assert_eq!(
            decode(b"a,\xFF\xC3\n\xE2\x82".to_vec(), 2),
            (Encoding::Utf8, "a,\u{FFFD}\u{FFFD}\n\u{FFFD}".into(), 3)
        );
    }

    #[test]
    fn an_unclosed_quote_ends_the_file_at_the_record_cap() {
        let text = "a,b\n1,\"unclosed\n2,3\n4,5\n".to_string() + &"x".repeat(100);
        let reader = std::io::BufReader::new(std::io::Cursor::new(text.into_bytes()));
        let mut decoder = Decoder::new(Box::new(reader), 40).unwrap();
        let mut out = String::new();
        let e = decoder.read_to_string(&mut out).unwrap_err();
        assert!(e.to_string().contains("max_record_bytes (40)"), "{e}");
    }

    fn read_capped(text: &str, cap: usize) -> std::io::Result<String> {
        let reader = std::io::BufReader::with_capacity(7, std::io::Cursor::new(text.as_bytes().to_vec()));
        let mut decoder = Decoder::new(Box::new(reader), cap).unwrap();
        let mut out = String::new();
        decoder.read_to_string(&mut out).map(|_| out)
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_a_literal() {
        // As the csv crate reads them: each line is one record.
        let text = "item,price\n27\" monitor,100\nA \"B\" C,2\n\"x\"y\"z\",3\n".to_string() + &"row,1\n".repeat(20);
        assert_eq!(read_capped(&text, 30).unwrap(), text);
        let mut csv = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
        assert!(csv.byte_records().all(|r| r.unwrap().len() == 2));
    }

    #[test]
    fn quoted_fields_hold_newlines_and_escaped_quotes() {
        // A record of 3 lines fits a cap of 40 bytes; the text after it is records of its own.
        let record = "\"a \"\"quoted\"\"\nline\",\"two\nlines\"\n";
        assert!(record.len() <= 40);
        let text = record.repeat(5);
        assert_eq!(read_capped(&text, 40).unwrap(), text);
        assert!(read_capped(&text, record.len() - 1).is_err());
    }
}
