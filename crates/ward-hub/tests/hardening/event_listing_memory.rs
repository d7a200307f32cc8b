//! Medium 6: listing events and jurisdiction pages is bounded in bytes and paginated.
