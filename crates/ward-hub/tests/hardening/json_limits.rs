//! Low: deeply nested lines and out-of-range numbers are refused, not stored as null.
