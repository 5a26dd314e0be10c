//! Helpers shared by passes.

use pannc_ir::{Graph, ValueId};

/// A value name not yet used in `g`, derived from `base`.
pub fn unique_name(g: &Graph, base: String) -> String {
    if g.find_value(&base).is_none() {
        return base;
    }
    (1..)
        .map(|i| format!("{base}_{i}"))
        .find(|n| g.find_value(n).is_none())
        .expect("some name is free")
}

/// Makes readers of `old` read `new`; when `old` is a graph output, `new` takes over its name
/// so the model's output names survive rewrites.
pub fn replace_keeping_name(g: &mut Graph, old: ValueId, new: ValueId) -> Result<(), String> {
    let was_output = g.outputs().contains(&old);
    g.replace_all_uses(old, new).map_err(|e| e.to_string())?;
    if was_output && !g.inputs().contains(&new) {
        let name = g.value(old).name.clone();
        let tmp = unique_name(g, format!("{name}__replaced"));
        g.rename_value(old, tmp).map_err(|e| e.to_string())?;
        g.rename_value(new, name).map_err(|e| e.to_string())?;
    }
    Ok(())
}
