//! Low: on a live interface, truncated-packet anomalies obey --filter.
