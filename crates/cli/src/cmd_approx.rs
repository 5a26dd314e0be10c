//! `pannc approx`: placeholder until the approximation core lands.
#[derive(clap::Args, Debug)]
pub struct ApproxArgs {}

pub fn run(_args: &ApproxArgs) -> anyhow::Result<()> {
    anyhow::bail!("pannc approx is not implemented yet")
}
