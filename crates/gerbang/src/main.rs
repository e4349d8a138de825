//! `gerbang`: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    gerbang::cli::run(gerbang::cli::Cli::parse()).await
}
