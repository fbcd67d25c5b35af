//! Our envelope (ids and readable headers) as AMQP message properties, and back.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use pipeline::queue::{CONTENT_TYPE, Envelope, Header, Headers};

/// Persistent MessagePack with the ids and readable headers of DESIGN §8.
pub(super) fn properties(envelope: &Envelope) -> BasicProperties {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut headers = FieldTable::default();
    for (key, value) in envelope.headers.iter() {
        let value = match value {
            Header::Text(t) => text(t),
            Header::Number(n) => AMQPValue::LongLongInt(*n),
        };
        headers.insert(key.into(), value);
    }
    BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(2)
        .with_message_id(short(&envelope.message_id))
        .with_correlation_id(short(&envelope.correlation_id))
        .with_timestamp(now)
        .with_headers(headers)
}

/// The envelope of a delivered message: its ids, and the headers that are text or numbers
/// (the broker's own `x-death` tables are left out; `x-first-death-reason` is kept).
pub(super) fn envelope(properties: &BasicProperties) -> Envelope {
    let mut headers = Headers::default();
    if let Some(table) = properties.headers() {
        for (key, value) in table.inner() {
            let key = key.as_str();
            match value {
                AMQPValue::LongString(s) => {
                    headers.set_text(key, &String::from_utf8_lossy(s.as_bytes()));
                }
                AMQPValue::ShortString(s) => headers.set_text(key, s.as_str()),
                other => {
                    if let Some(n) = number(other) {
                        headers.set_number(key, n);
                    }
                }
            }
        }
    }
    Envelope {
        message_id: properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        correlation_id: properties
            .correlation_id()
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        headers,
    }
}

/// AMQP short strings hold 255 bytes; longer values are cut at a character boundary.
pub(super) fn short(value: &str) -> ShortString {
    let mut end = value.len().min(255);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    ShortString::from(&value[..end])
}

pub(super) fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// An integer header, whatever integer type the sender (or the broker) used.
pub(super) fn number(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::ShortShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::LongLongInt(n) => Some(*n),
        _ => None,
    }
}
