//! Analyses: facts about a graph that transforms consume. They never change the graph.

mod interval;
mod range;

pub use interval::{intervals, Intervals};
pub use range::{activation_inputs, calibrate, RangeStats, Ranges};
