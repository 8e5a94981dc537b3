pub async fn run(_args: crate::DevArgs) -> anyhow::Result<()> { anyhow::bail!("not yet") }
