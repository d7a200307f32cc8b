//! Medium 5: multi-member gzip bodies and trailing garbage are read whole or refused, never acknowledged in part.
