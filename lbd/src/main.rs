//! `lbd` command line: parse, then the common `main` of the three daemons.

use std::process::ExitCode;

use clap::Parser;
use runtime::daemon::{Daemon, Flavour};

fn main() -> ExitCode {
    runtime::daemon::main(
        lbd::Cli::parse(),
        Daemon {
            name: "lbd",
            flavour: Flavour::MultiThread,
            common: |c| &c.common,
            user: |c| &c.user,
            command,
            check: |t| Ok(lbd::summary(&lbd::view(t))),
            drop_privileges: |c: &lbd::Cli| lbd::drop_privileges(c).map(drop),
            run: lbd::run,
        },
    )
}

fn command(cli: &lbd::Cli) -> Option<ExitCode> {
    match &cli.command {
        Some(lbd::Command::Status { json }) => {
            Some(runtime::daemon::exit_code(lbd::status_command(cli, *json)))
        }
        Some(lbd::Command::Drain { backend }) => Some(runtime::daemon::exit_code(
            lbd::drain_command(cli, "drain", backend),
        )),
        Some(lbd::Command::Undrain { backend }) => Some(runtime::daemon::exit_code(
            lbd::drain_command(cli, "undrain", backend),
        )),
        Some(lbd::Command::Import(args)) => Some(runtime::daemon::exit_code(import::command::run(
            args,
            import::Format::Keepalived,
        ))),
        None => None,
    }
}
