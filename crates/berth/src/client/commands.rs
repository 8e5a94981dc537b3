//! (Being written.)
use super::ClientCommand;

pub async fn run(_command: ClientCommand) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
