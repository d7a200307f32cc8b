//! Medium 9: a reload that would lose rules or load half-parsed rules keeps the old set and says so.
