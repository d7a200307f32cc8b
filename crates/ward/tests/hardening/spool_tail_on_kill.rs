//! Medium 4: what reached the spool before a kill -9 reaches the hub.
