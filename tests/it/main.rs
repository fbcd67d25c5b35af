//! Integration tests: one binary, against the real model and ONNX Runtime (and, in later
//! modules, the real RabbitMQ and Postgres).

mod assemblyai;
mod audio_errors;
mod audio_formats;
mod deploy;
mod diarize;
mod distributed;
mod drive;
mod enrollment;
mod eval;
mod frontend;
mod hardening;
mod operations;
mod parity;
mod report;
mod runtime_errors;
mod standalone;
mod supabase;
mod worker_decisions;
