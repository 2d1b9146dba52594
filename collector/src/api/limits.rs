//! Everything an agent sends is untrusted. These checks run before anything is stored:
//! the body's size (compressed and decompressed), then the shape of the JSON (string
//! lengths, array lengths, nesting), so that unknown fields are tolerated but bounded.

use serde::Deserialize;
use serde_json::Value;
use std::io::Read;

/// Limits on what one request may carry.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestLimits {
    /// Bytes on the wire (after any compression).
    pub max_body_bytes: usize,
    /// Bytes after gzip decompression.
    pub max_decompressed_bytes: usize,
    /// The longest string anywhere in a report.
    pub max_string_bytes: usize,
    /// The longest array anywhere in a report (the inventory is the longest one).
    pub max_array_items: usize,
    /// How deep objects and arrays may nest in an enrollment body. Reports are parsed
    /// into their fixed shape directly; nesting inside unknown fields stops at
    /// serde_json's recursion limit (128) and their strings at `max_string_bytes`.
    pub max_depth: usize,
    pub max_findings: usize,
    pub max_evidence: usize,
}

impl Default for RequestLimits {
    fn default() -> RequestLimits {
        RequestLimits {
            max_body_bytes: 8 * 1024 * 1024,
            max_decompressed_bytes: 48 * 1024 * 1024,
            max_string_bytes: 8 * 1024,
            max_array_items: 50_000,
            max_depth: 16,
            max_findings: 500,
            max_evidence: 5_000,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body is not valid gzip: {0}")]
    BadCompression(String),
    #[error("unsupported Content-Encoding {0:?} (send identity or gzip)")]
    UnsupportedEncoding(String),
    #[error("the body is not valid JSON: {0}")]
    BadJson(String),
    #[error("{0}")]
    Shape(String),
}

/// The request body as plain bytes: gzip is decompressed up to the limit, so a zip
/// bomb stops at `max_decompressed_bytes`.
pub fn decode_body(
    body: &[u8],
    content_encoding: Option<&str>,
    limits: &RequestLimits,
) -> Result<Vec<u8>, LimitError> {
    if body.len() > limits.max_body_bytes {
        return Err(LimitError::TooLarge(limits.max_body_bytes));
    }
    match content_encoding.map(|encoding| encoding.trim().to_ascii_lowercase()) {
        None => Ok(body.to_vec()),
        Some(encoding) if encoding.is_empty() || encoding == "identity" => Ok(body.to_vec()),
        Some(encoding) if encoding == "gzip" => {
            let mut decoder =
                flate2::read::GzDecoder::new(body).take(limits.max_decompressed_bytes as u64 + 1);
            let mut plain = Vec::with_capacity(body.len() * 4);
            decoder
                .read_to_end(&mut plain)
                .map_err(|error| LimitError::BadCompression(error.to_string()))?;
            if plain.len() > limits.max_decompressed_bytes {
                return Err(LimitError::TooLarge(limits.max_decompressed_bytes));
            }
            Ok(plain)
        }
        Some(other) => Err(LimitError::UnsupportedEncoding(other)),
    }
}

/// Parses JSON and checks its shape against the limits. serde_json's own recursion
/// limit (128) stops pathological nesting before this walk sees it.
pub fn parse_bounded(body: &[u8], limits: &RequestLimits) -> Result<Value, LimitError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| LimitError::BadJson(error.to_string()))?;
    check_value(&value, limits, 0, "$")?;
    Ok(value)
}

/// Finds a JSON string (a value or a field name, known or not) longer than `max`
/// bytes without building the document, so typed parsing can follow at full speed.
/// A string's length is its bytes as sent between its quotes (an escape counts as
/// written); a string left open runs to the end of the body.
///
/// The body is read 64 bytes at a time as bit masks (quotes, backslashes, and from
/// them the bytes inside strings), in plain integer arithmetic: the byte-by-byte scan
/// it replaced was a seventh of the collector's CPU under a stream of full reports. A
/// body with a backslash outside every string (not JSON) is read byte by byte
/// ([`string_lengths_byte_by_byte`]), which gives the same answer for any body.
pub fn check_string_lengths(body: &[u8], max: usize) -> Result<(), LimitError> {
    // No string is longer than the body around it.
    if body.len() <= max {
        return Ok(());
    }
    string_lengths_by_blocks(body, max)
        .unwrap_or_else(|| string_lengths_byte_by_byte(body, max))
        .map_err(|offset| too_long(max, offset))
}

fn too_long(max: usize, offset: usize) -> LimitError {
    LimitError::Shape(format!(
        "a string longer than {max} bytes (at byte {offset})"
    ))
}

/// The scan byte by byte: `Err(offset)` of the first byte beyond `max` in a string.
fn string_lengths_byte_by_byte(body: &[u8], max: usize) -> Result<(), usize> {
    let (mut inside, mut escaped, mut length) = (false, false, 0usize);
    for (offset, byte) in body.iter().enumerate() {
        if !inside {
            if *byte == b'"' {
                inside = true;
                length = 0;
            }
            continue;
        }
        if escaped {
            escaped = false;
        } else if *byte == b'\\' {
            escaped = true;
        } else if *byte == b'"' {
            inside = false;
            continue;
        }
        length += 1;
        if length > max {
            return Err(offset);
        }
    }
    Ok(())
}

/// Bit `i` set for each byte `i` of `word` (little-endian) equal to `byte`.
fn byte_mask(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (0x0101_0101_0101_0101 * u64::from(byte));
    // High bit of each byte set exactly where that byte of `x` is zero.
    let zero = !(((x & LOW7) + LOW7) | x | LOW7);
    ((zero >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Bits of the 64 bytes of `block` equal to `byte`.
fn block_mask(block: &[u8; 64], byte: u8) -> u64 {
    let mut mask = 0u64;
    for (index, word) in block.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        mask |= byte_mask(word, byte) << (index * 8);
    }
    mask
}

/// Each bit the parity of the set bits at and below it.
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

/// The bits `first..first + length` (`length` at least 1).
fn run_bits(first: u32, length: u32) -> u64 {
    (u64::MAX >> (64 - length)) << first
}

/// The runs of set bits of `mask`, lowest first, as (first bit, length).
fn runs_of_ones(mut mask: u64) -> impl Iterator<Item = (u32, u32)> {
    std::iter::from_fn(move || {
        if mask == 0 {
            return None;
        }
        let first = mask.trailing_zeros();
        let length = (mask >> first).trailing_ones();
        mask &= !run_bits(first, length);
        Some((first, length))
    })
}

/// The scan by 64-byte blocks: `Some(Err(offset))` as the byte-by-byte scan gives it,
/// `None` when a backslash stands outside every string (the masks assume JSON, where a
/// backslash only escapes inside a string).
fn string_lengths_by_blocks(body: &[u8], max: usize) -> Option<Result<(), usize>> {
    // Carried from block to block: inside a string (all ones or none), the parity of
    // the backslashes running to the block's end, and where the string bytes running
    // to the block's end began.
    let mut inside_carry = 0u64;
    let mut backslash_parity = 0u32;
    let mut run_start: Option<usize> = None;
    for (index, chunk) in body.chunks(64).enumerate() {
        let base = index * 64;
        let mut block = [0u8; 64];
        block[..chunk.len()].copy_from_slice(chunk);
        let valid = u64::MAX >> (64 - chunk.len());
        let backslashes = block_mask(&block, b'\\');
        // A byte right after an odd run of backslashes is escaped.
        let mut escaped = 0u64;
        if backslash_parity == 1 && backslashes & 1 == 0 {
            escaped |= 1;
        }
        let mut parity_at_end = 0;
        for (first, length) in runs_of_ones(backslashes) {
            let carried = if first == 0 { backslash_parity } else { 0 };
            let parity = (length & 1) ^ carried;
            if first + length == 64 {
                parity_at_end = parity;
            } else if parity == 1 {
                escaped |= 1 << (first + length);
            }
        }
        backslash_parity = parity_at_end;
        let quotes = block_mask(&block, b'"') & !escaped;
        let inside = prefix_xor(quotes) ^ inside_carry;
        inside_carry = 0u64.wrapping_sub(inside >> 63);
        if backslashes & !inside & valid != 0 {
            return None;
        }
        let mut runs = inside & !quotes & valid;
        // The string carried in goes on to the first byte that is not a string byte.
        if let Some(start) = run_start {
            let ones = runs.trailing_ones();
            if base + ones as usize - start > max {
                return Some(Err(start + max));
            }
            if ones == 64 {
                continue;
            }
            run_start = None;
            if ones > 0 {
                runs &= !run_bits(0, ones);
            }
        }
        for (first, length) in runs_of_ones(runs) {
            let start = base + first as usize;
            if length as usize > max {
                return Some(Err(start + max));
            }
            if first + length == 64 {
                run_start = Some(start);
            }
        }
    }
    Some(Ok(()))
}

/// Parses a typed document: broken JSON is a `BadJson` (400), JSON of the wrong shape
/// a `Shape` error (422).
///
/// A whole number written with a fraction (`5106.0`) is a whole number, as JSON Schema
/// (and the OpenAPI documents) count it: when the fast typed parse refuses the body,
/// it is read again with such numbers as integers before it is refused.
pub fn parse_typed<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, LimitError> {
    let error = match serde_json::from_slice(body) {
        Ok(typed) => return Ok(typed),
        Err(error) => error,
    };
    if error.classify() != serde_json::error::Category::Data {
        return Err(LimitError::BadJson(error.to_string()));
    }
    let shape_error = |error: serde_json::Error| LimitError::Shape(format!("not {what}: {error}"));
    let mut value: Value = serde_json::from_slice(body).map_err(shape_error)?;
    if !whole_numbers_as_integers(&mut value) {
        return Err(shape_error(error));
    }
    // Written out and read again, not `from_value`: a typed document may keep a part
    // raw (`RawValue`), which only reads from text.
    let rewritten = serde_json::to_vec(&value).map_err(shape_error)?;
    serde_json::from_slice(&rewritten).map_err(shape_error)
}

/// Rewrites every number with a zero fraction (`5106.0`, `1e3`) as that integer; true
/// when it rewrote one. Only within ±2^53, where every whole float is exact: beyond it
/// a float may be an integer literal too large for 64 bits, rounded on reading.
pub fn whole_numbers_as_integers(value: &mut Value) -> bool {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(number) if number.is_f64() => match number.as_f64() {
            Some(float) if float.fract() == 0.0 && float.abs() <= EXACT => {
                // Exact: a whole float within ±2^53 converts without loss.
                *number = serde_json::Number::from(float as i64);
                true
            }
            _ => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
            whole_numbers_as_integers(item) | changed
        }),
        Value::Object(fields) => fields.values_mut().fold(false, |changed, item| {
            whole_numbers_as_integers(item) | changed
        }),
        _ => false,
    }
}

fn check_value(
    value: &Value,
    limits: &RequestLimits,
    depth: usize,
    path: &str,
) -> Result<(), LimitError> {
    if depth > limits.max_depth {
        return Err(LimitError::Shape(format!(
            "{path}: nested deeper than {} levels",
            limits.max_depth
        )));
    }
    match value {
        Value::String(text) if text.len() > limits.max_string_bytes => {
            Err(LimitError::Shape(format!(
                "{path}: a string of {} bytes (at most {})",
                text.len(),
                limits.max_string_bytes
            )))
        }
        Value::Array(items) => {
            if items.len() > limits.max_array_items {
                return Err(LimitError::Shape(format!(
                    "{path}: {} items (at most {})",
                    items.len(),
                    limits.max_array_items
                )));
            }
            for item in items {
                check_value(item, limits, depth + 1, path)?;
            }
            Ok(())
        }
        Value::Object(fields) => {
            if fields.len() > 256 {
                return Err(LimitError::Shape(format!(
                    "{path}: {} fields (at most 256)",
                    fields.len()
                )));
            }
            for (key, item) in fields {
                if key.len() > 256 {
                    return Err(LimitError::Shape(format!(
                        "{path}: a field name is too long"
                    )));
                }
                check_value(
                    item,
                    limits,
                    depth + 1,
                    &format!("{path}.{}", truncate(key)),
                )?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn truncate(key: &str) -> &str {
    let mut end = key.len().min(40);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use proptest::prelude::{Just, any};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(data).expect("write");
        encoder.finish().expect("finish")
    }

    #[test]
    fn gzip_is_decoded_and_bombs_stop_at_the_limit() {
        let limits = RequestLimits {
            max_decompressed_bytes: 1000,
            ..RequestLimits::default()
        };
        assert_eq!(
            decode_body(&gzip(b"{\"a\":1}"), Some("gzip"), &limits),
            Ok(b"{\"a\":1}".to_vec())
        );
        let bomb = gzip(&vec![b' '; 10_000_000]);
        assert!(bomb.len() < 20_000);
        assert_eq!(
            decode_body(&bomb, Some("gzip"), &limits),
            Err(LimitError::TooLarge(1000))
        );
        assert!(matches!(
            decode_body(b"not gzip", Some("gzip"), &limits),
            Err(LimitError::BadCompression(_))
        ));
        assert!(matches!(
            decode_body(b"x", Some("br"), &limits),
            Err(LimitError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn whole_numbers_with_a_fraction_read_as_integers() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct Counts {
            pcs: u64,
            delta: i64,
        }
        let read = |body: &str| parse_typed::<Counts>(body.as_bytes(), "counts");
        assert_eq!(
            read(r#"{"pcs": 5106.0, "delta": -2.0}"#),
            Ok(Counts {
                pcs: 5106,
                delta: -2
            })
        );
        assert_eq!(
            read(r#"{"pcs": 1e3, "delta": 0}"#),
            Ok(Counts {
                pcs: 1000,
                delta: 0
            })
        );
        for refused in [
            r#"{"pcs": 5106.5, "delta": 0}"#,
            r#"{"pcs": -1.0, "delta": 0}"#,
            r#"{"pcs": 1e300, "delta": 0}"#,
            r#"{"pcs": 0, "delta": -9223372036854775809}"#,
            r#"{"pcs": "5", "delta": 0}"#,
        ] {
            assert!(
                matches!(read(refused), Err(LimitError::Shape(_))),
                "{refused}"
            );
        }
        assert!(matches!(read(r#"{"pcs": 5"#), Err(LimitError::BadJson(_))));
    }

    #[test]
    fn long_strings_are_found_anywhere() {
        assert!(check_string_lengths(br#"{"a":"0123456789","b":["xy"]}"#, 10).is_ok());
        assert!(check_string_lengths(br#"{"a":"0123456789x"}"#, 10).is_err());
        assert!(check_string_lengths(br#"{"0123456789x":1}"#, 10).is_err());
        // Escaped quotes do not end a string.
        assert!(check_string_lengths(br#"["01234\"56789"]"#, 10).is_err());
        assert!(check_string_lengths(br#"["a\\","b"]"#, 10).is_ok());
    }

    /// JSON-like text: strings of plain bytes, UTF-8, escaped backslashes and escaped
    /// quotes, between structural bytes, the last string perhaps left open.
    fn json_like() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::strategy::Strategy;
        let piece = proptest::prop_oneof![
            Just(&b"a"[..]),
            Just(&b"\\\\"[..]),
            Just(&b"\\\""[..]),
            Just("é".as_bytes()),
            Just(&b"\\n"[..]),
        ];
        let string = proptest::collection::vec(piece, 0..90);
        let between = proptest::prop_oneof![Just(&b":"[..]), Just(&b","[..]), Just(&b"[{"[..])];
        (
            proptest::collection::vec((between, string), 0..12),
            any::<bool>(),
        )
            .prop_map(|(strings, left_open)| {
                let mut body = Vec::new();
                let count = strings.len();
                for (index, (between, pieces)) in strings.into_iter().enumerate() {
                    body.extend_from_slice(between);
                    body.push(b'"');
                    pieces
                        .iter()
                        .for_each(|piece| body.extend_from_slice(piece));
                    if !(left_open && index + 1 == count) {
                        body.push(b'"');
                    }
                }
                body
            })
    }

    proptest::proptest! {
        /// Bodies made of quotes, backslashes and other bytes, cut anywhere (strings
        /// left open, a backslash last): the same answer as the byte-by-byte scan, and
        /// the same from the blocks whenever they give one.
        #[test]
        fn string_lengths_agree_with_the_byte_by_byte_scan(
            body in proptest::collection::vec(
                proptest::prop_oneof![Just(b'"'), Just(b'\\'), Just(b'a'), Just(b':'), any::<u8>()],
                0..400,
            ),
            max in 0usize..80,
        ) {
            let slow = string_lengths_byte_by_byte(&body, max);
            if let Some(fast) = string_lengths_by_blocks(&body, max) {
                proptest::prop_assert_eq!(fast, slow);
            }
            proptest::prop_assert_eq!(
                check_string_lengths(&body, max),
                slow.map_err(|offset| too_long(max, offset))
            );
        }

        /// JSON-like bodies are read by blocks (no fallback), strings crossing blocks
        /// and escapes at block edges included, with the byte-by-byte scan's answer.
        #[test]
        fn json_like_bodies_are_read_by_blocks(body in json_like(), max in 0usize..200) {
            let slow = string_lengths_byte_by_byte(&body, max);
            proptest::prop_assert_eq!(string_lengths_by_blocks(&body, max), Some(slow));
        }
    }

    #[test]
    fn shapes_beyond_the_limits_are_named() {
        let limits = RequestLimits {
            max_string_bytes: 10,
            max_array_items: 3,
            max_depth: 4,
            ..RequestLimits::default()
        };
        assert!(parse_bounded(br#"{"a":["x","y"]}"#, &limits).is_ok());
        let long = parse_bounded(br#"{"name":"01234567890"}"#, &limits);
        assert!(matches!(long, Err(LimitError::Shape(message)) if message.contains("$.name")));
        assert!(parse_bounded(b"[1,2,3,4]", &limits).is_err());
        assert!(parse_bounded(b"[[[[[[1]]]]]]", &limits).is_err());
        assert!(matches!(
            parse_bounded(b"\xff\xfe", &limits),
            Err(LimitError::BadJson(_))
        ));
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse_bounded(deep.as_bytes(), &limits),
            Err(LimitError::BadJson(_))
        ));
    }
}
