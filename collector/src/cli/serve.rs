//! `sverka-collector serve`: the server ([`crate::server::serve`]) with `--listen`
//! over the configuration's address.

use anyhow::Result;
use std::sync::Arc;

use crate::config::Config;
use crate::store::Store;

pub(super) async fn serve(
    mut config: Config,
    listen: Option<String>,
    store: Arc<dyn Store>,
) -> Result<()> {
    if let Some(listen) = listen {
        config.listen = listen;
    }
    crate::server::serve(config, store).await
}
