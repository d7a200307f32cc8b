//! HTTP/1.x: [`parser`] holds the pure parsing functions, [`state`] the per-flow transaction
//! state machine, [`eve`] the EVE `http` rendering.

pub mod eve;
pub mod parser;
pub mod state;

pub use state::{HttpRequest, HttpResponse, HttpState, HttpTransaction};
