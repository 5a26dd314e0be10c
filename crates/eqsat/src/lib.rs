//! Equality saturation over pannc-fhe circuits (in progress).
