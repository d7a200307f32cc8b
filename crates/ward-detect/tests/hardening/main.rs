//! Detection hardening: bounded regex work and strict rule option values.
//!
//! One module per finding of the hardening review (issue #10), named after it, so a failing
//! test names what broke. Each module's note says the finding.

mod pcre_backtracking;
mod rule_option_values;
