//! Tombstones: tests.
