//! Polynomial approximation (work in progress).
