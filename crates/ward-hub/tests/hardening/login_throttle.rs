//! Medium 10: login throttling per source and account with backoff, the real user can still log in.
