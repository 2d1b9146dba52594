//! Proof suite part: faults (not built yet).

use super::{Budget, Figure};

pub fn run(_budget: &Budget) -> anyhow::Result<Vec<Figure>> {
    anyhow::bail!("the faults part is not built yet")
}
