//! Analyses: facts about a graph that transforms consume. They never change the graph.

mod range;

pub use range::{activation_inputs, calibrate, RangeStats, Ranges};
