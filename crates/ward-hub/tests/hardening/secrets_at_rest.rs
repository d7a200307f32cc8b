//! Low: the hub database is private to its owner and webhook secrets are encrypted at rest.
