//! Low: the OpenAPI document lists every route the router serves.
