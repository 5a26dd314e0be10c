//! Analyses: facts about a graph that transforms consume. They never change the graph.

mod depth;
mod interval;
mod norms;
mod observe;
mod range;

pub use depth::{ct_ct_mults, levels};
pub use interval::{intervals, Intervals};
pub use norms::{weight_norms, LayerNorm};
pub use observe::observe;
pub use range::{
    activation_inputs, calibrate, is_activation, Accumulator, RangeStats, Ranges, CHUNK, SAMPLE,
};
