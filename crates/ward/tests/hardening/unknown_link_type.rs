//! Low: an unknown link type is an error with a clear message and a non-zero exit.
