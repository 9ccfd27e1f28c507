//! The command line: placeholder until written.
