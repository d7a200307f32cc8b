//! Low: /metrics needs an admin token or a separate listener.
