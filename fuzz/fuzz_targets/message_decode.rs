//! Any bytes as a broker message body: a task or a result decodes or is classified
//! (`undecodable`, `unknown_schema_version`, `bad_fields`), never panics. What decodes encodes
//! back to something that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::{ClipResult, ClipTask};
use pipeline::queue::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(task) = decode::<ClipTask>(data) {
        let again = encode(&task).expect("a decoded task encodes");
        let back: ClipTask = decode(&again).expect("an encoded task decodes");
        assert_eq!(back.clip, task.clip);
        assert_eq!(back.attempt, task.attempt);
    }
    if let Ok(result) = decode::<ClipResult>(data) {
        let again = encode(&result).expect("a decoded result encodes");
        let back: ClipResult = decode(&again).expect("an encoded result decodes");
        assert_eq!(back.clip_key, result.clip_key);
    }
});
