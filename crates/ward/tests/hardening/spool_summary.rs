//! Low: the spool's summary counts dropped records; under the cap the least valuable records go first.
