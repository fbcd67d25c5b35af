//! Message bodies: MessagePack with named fields, in an envelope that carries the schema version.
//!
//! A consumer checks the version before the body, so a message from a newer (or older,
//! incompatible) producer is a clear `UnknownVersion`, not a confusing field error. Every decode
//! failure names a stable `reason` for the dead-letter headers; none panics.

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
pub const CONTENT_TYPE: &str = "application/msgpack";

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u32,
    body: &'a T,
}

#[derive(Deserialize)]
struct Version {
    v: u32,
    #[serde(rename = "body")]
    _body: IgnoredAny,
}

#[derive(Deserialize)]
struct EnvelopeIn<T> {
    body: T,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageError {
    #[error("the message body is not a voice-diarization message: {0}")]
    Undecodable(String),
    #[error("schema version {found} is not supported (this build reads version {SCHEMA_VERSION})")]
    UnknownVersion { found: u32 },
    #[error("the message does not match schema version {SCHEMA_VERSION}: {0}")]
    BadFields(String),
    #[error("the message could not be encoded: {0}")]
    Encode(String),
}

impl MessageError {
    /// A short stable name for the dead-letter headers and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Undecodable(_) => "undecodable",
            Self::UnknownVersion { .. } => "unknown_schema_version",
            Self::BadFields(_) => "bad_fields",
            Self::Encode(_) => "encode",
        }
    }
}

pub fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, MessageError> {
    rmp_serde::to_vec_named(&EnvelopeOut {
        v: SCHEMA_VERSION,
        body,
    })
    .map_err(|e| MessageError::Encode(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, MessageError> {
    let version: Version =
        rmp_serde::from_slice(bytes).map_err(|e| MessageError::Undecodable(e.to_string()))?;
    if version.v != SCHEMA_VERSION {
        return Err(MessageError::UnknownVersion { found: version.v });
    }
    rmp_serde::from_slice::<EnvelopeIn<T>>(bytes)
        .map(|e| e.body)
        .map_err(|e| MessageError::BadFields(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClipTask;
    use crate::source::ClipRef;

    fn task() -> ClipTask {
        ClipTask {
            job_id: "job-1".into(),
            location_id: "8f14e45f-ceea-467a-9af0-2f1a3c6a1d5e".into(),
            clip: ClipRef {
                key: "loc/2025-10-06/a.wav".into(),
                name: "a.wav".into(),
                date: "2025-10-06".into(),
                transaction_id: None,
                size: 42,
                version: "42-0".into(),
                address: "/data/a.wav".into(),
            },
            attempt: 1,
            transcript_id: None,
        }
    }

    #[test]
    fn a_task_round_trips() {
        let bytes = encode(&task()).unwrap();
        let back: ClipTask = decode(&bytes).unwrap();
        assert_eq!(back.clip, task().clip);
        assert_eq!(back.job_id, "job-1");
        assert_eq!(back.transcript_id, None);
        // A retry carries the transcript it waits for; a task without one keeps its old bytes.
        let retry = ClipTask {
            transcript_id: Some("tr-1".into()),
            ..task()
        };
        let back: ClipTask = decode(&encode(&retry).unwrap()).unwrap();
        assert_eq!(back.transcript_id.as_deref(), Some("tr-1"));
        assert!(encode(&retry).unwrap().len() > bytes.len());
    }

    #[test]
    fn poison_is_classified_never_a_panic() {
        // Not MessagePack at all, empty, truncated.
        let good = encode(&task()).unwrap();
        for bytes in [
            &b"{\"json\": true}"[..],
            &[],
            &good[..good.len() / 2],
            &[0xc1],
        ] {
            let e = decode::<ClipTask>(bytes).unwrap_err();
            assert_eq!(e.reason(), "undecodable", "{e}");
        }
        // A newer producer's version.
        let newer = rmp_serde::to_vec_named(&EnvelopeOut {
            v: 2,
            body: &task(),
        })
        .unwrap();
        let e = decode::<ClipTask>(&newer).unwrap_err();
        assert_eq!(e, MessageError::UnknownVersion { found: 2 });
        assert_eq!(e.reason(), "unknown_schema_version");
        // The right version with missing fields.
        #[derive(Serialize)]
        struct Partial {
            job_id: &'static str,
        }
        let partial = rmp_serde::to_vec_named(&EnvelopeOut {
            v: SCHEMA_VERSION,
            body: &Partial { job_id: "x" },
        })
        .unwrap();
        let e = decode::<ClipTask>(&partial).unwrap_err();
        assert_eq!(e.reason(), "bad_fields");
        assert!(
            e.to_string().contains("location_id") || e.to_string().contains("missing"),
            "{e}"
        );
        // A body of the wrong type entirely.
        let e = decode::<ClipTask>(
            &rmp_serde::to_vec_named(&EnvelopeOut {
                v: SCHEMA_VERSION,
                body: &7u8,
            })
            .unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.reason(), "bad_fields");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep over short byte strings (cargo fuzz covers the rest).
        let mut x: u32 = 0x9e37_79b9;
        for len in 0..64 {
            for _ in 0..64 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x as u8
                    })
                    .collect();
                let _ = decode::<ClipTask>(&bytes);
            }
        }
    }
}
