//! Low: the rule parser refuses negative sids, negative offsets and a zero depth.
