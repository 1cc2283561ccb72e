//! Test harness: the shared in-memory broker and whole-topic reads
//! (`citystream-testkit`).

#![allow(unused_imports)] // each test binary uses a different subset

pub use citystream_testkit::{TEST_TIMEOUT, TestBroker, bounded, read_topic};
