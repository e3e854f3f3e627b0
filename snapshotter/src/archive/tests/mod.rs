//! Tests of the archive module.
