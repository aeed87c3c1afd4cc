//! Test harness: see the test files under tests/tests.
