//! `dce`: dead-code elimination.

use crate::{Pass, PassError};
use pannc_ir::Graph;

/// Dead-code elimination: removes every node none of whose outputs reaches a graph output.
pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }
    fn summary(&self) -> &'static str {
        "remove nodes whose results are never used"
    }
    fn run(&self, g: &mut Graph, _cx: &mut crate::Context) -> Result<bool, PassError> {
        let order = g.topo_order().map_err(|e| PassError::Graph {
            pass: self.name(),
            message: e.to_string(),
        })?;
        let mut changed = false;
        for id in order.into_iter().rev() {
            let unused = g.node(id).outputs().iter().all(|&v| !g.is_used(v));
            if unused {
                changed |= g.remove_node(id);
            }
        }
        Ok(changed)
    }
}
