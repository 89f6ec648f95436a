//! `cirrus keys …`: developer signing keys (ed25519) for app packages.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cirrus_package::DeveloperKey;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key: KEY (secret, mode 600) and KEY.pub (the publisher identity).
    Generate {
        /// Where to write the secret key.
        #[arg(long, short, default_value = "cirrus-signing.key")]
        out: PathBuf,
        /// Overwrite an existing key (apps signed with the old key can then no longer be updated).
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cmd: KeysCommand) -> ExitCode {
    match generate(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cirrus keys: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn generate(cmd: KeysCommand) -> Result<()> {
    let KeysCommand::Generate { out, force } = cmd;
    let key = DeveloperKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut f = options
        .open(&out)
        .with_context(|| format!("creating {} (use --force to replace a key)", out.display()))?;
    f.write_all(key.to_text().as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    let public = out.with_extension("pub");
    std::fs::write(&public, key.public().to_text())
        .with_context(|| format!("writing {}", public.display()))?;
    eprintln!(
        "secret key: {} (keep it safe: updates of your apps must be signed with it)",
        out.display()
    );
    eprintln!(
        "public key: {} (fingerprint {})",
        public.display(),
        key.public().fingerprint()
    );
    Ok(())
}
