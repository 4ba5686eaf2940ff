use clap::Subcommand;
#[derive(Subcommand)]
pub enum BenchCommand {
    Noop,
}
pub async fn run(_c: BenchCommand) -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}
