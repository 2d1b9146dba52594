//! `sverka-collector catalog`: store a new catalog (and re-evaluate every PC), or
//! print the current one.

use anyhow::{Context, Result};

use super::CatalogCommand;
use crate::catalog::{CatalogState, set_catalog};
use crate::now;
use crate::store::Store;

pub(super) async fn catalog(command: CatalogCommand, store: &dyn Store) -> Result<()> {
    match command {
        CatalogCommand::Set { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let (revision, evaluated) =
                set_catalog(store, &file.display().to_string(), &text, now()).await?;
            eprintln!("catalog revision {revision} stored; {evaluated} PCs evaluated again");
        }
        CatalogCommand::Show => {
            let state = CatalogState::load(store).await?;
            print!("{}", state.toml);
        }
    }
    Ok(())
}
