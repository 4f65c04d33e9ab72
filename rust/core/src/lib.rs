//! duet-core: the Duet call engine, with no FFI of its own.
//!
//! `VideoCall` and `Conversation` are the public API of the seeds; `lifecycle` is the
//! sans-I/O state machine they drive.

pub mod lifecycle;
