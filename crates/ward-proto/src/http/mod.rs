//! HTTP/1.x: [`parser`] holds the pure parsing functions, [`state`] the per-flow transaction
//! state machine (its response direction follows libhtp, see `response.rs`), [`headers`] the
//! libhtp-style response header parser, [`decompress`] the streaming body decoder, [`eve`] the
//! EVE `http` rendering.

pub mod decompress;
pub mod eve;
pub mod headers;
pub mod parser;
pub mod state;

pub use state::{HttpRequest, HttpResponse, HttpState, HttpTransaction};
