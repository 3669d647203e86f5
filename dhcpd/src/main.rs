//! `dhcpd` command line: parse, then the common `main` of the three daemons.

use std::process::ExitCode;

use clap::Parser;
use runtime::daemon::{Daemon, Flavour};

fn main() -> ExitCode {
    runtime::daemon::main(
        dhcpd::Cli::parse(),
        Daemon {
            name: "dhcpd",
            // One thread for the packet path (no cross-thread wake-ups per packet); lease commits
            // run on their own thread, ping checks on the blocking pool.
            flavour: Flavour::CurrentThread,
            common: |c| &c.common,
            user: |c| &c.user,
            command,
            check: |t| Ok(dhcpd::summary(&dhcpd::view(t))),
            drop_privileges: |c: &dhcpd::Cli| dhcpd::drop_privileges(c).map(drop),
            run: dhcpd::run,
        },
    )
}

fn command(cli: &dhcpd::Cli) -> Option<ExitCode> {
    match &cli.cmd {
        Some(dhcpd::Cmd::Import(args)) => Some(runtime::daemon::exit_code(import::command::run(
            args,
            import::Format::IscDhcpd,
        ))),
        // `--check` goes before `leases`.
        Some(dhcpd::Cmd::Leases { json, all }) if !cli.common.check => {
            Some(match dhcpd::leases_command(cli, *json, *all) {
                Ok(s) => {
                    print!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dhcpd leases: {e:#}");
                    ExitCode::FAILURE
                }
            })
        }
        Some(dhcpd::Cmd::Release { ip }) if !cli.common.check => {
            Some(match dhcpd::release_command(cli, *ip) {
                Ok(s) => {
                    println!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dhcpd release: {e:#}");
                    ExitCode::FAILURE
                }
            })
        }
        _ => None,
    }
}
