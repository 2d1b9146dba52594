//! Proof suite part: hostile (not built yet).

use super::{Budget, Figure};

pub fn run(_budget: &Budget) -> anyhow::Result<Vec<Figure>> {
    anyhow::bail!("the hostile part is not built yet")
}
