//! Low: bidi controls and other invisible characters are refused in names.
