//! Kaspa base layer.
