//! What travels between the stages when a broker carries them (DESIGN §8). So far: the message
//! codec, shared by every publisher and consumer.

mod message;

pub use message::{CONTENT_TYPE, MessageError, SCHEMA_VERSION, decode, encode};
