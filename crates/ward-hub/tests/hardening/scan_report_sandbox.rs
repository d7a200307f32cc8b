//! Medium 11: uploaded scan reports are never served as active content on the hub's origin.
