//! `dnsd` command line: parse, then the common `main` of the three daemons.

use std::process::ExitCode;

use clap::Parser;
use runtime::daemon::{CheckFailed, Daemon, Flavour};

fn main() -> ExitCode {
    runtime::daemon::main(
        dnsd::Cli::parse(),
        Daemon {
            name: "dnsd",
            flavour: Flavour::MultiThread,
            common: |c| &c.common,
            user: |c| &c.user,
            command,
            check,
            drop_privileges: prepare,
            run: dnsd::run,
        },
    )
}

fn command(cli: &dnsd::Cli) -> Option<ExitCode> {
    match &cli.cmd {
        Some(dnsd::Cmd::Import(args)) => Some(runtime::daemon::exit_code(import::command::run(
            args,
            import::Format::Zone,
        ))),
        Some(dnsd::Cmd::Status { json }) => {
            let t = runtime::daemon::load_or_exit(&cli.common.config);
            let path = cli.common.runtime_path(&dnsd::view(&t).control_socket);
            Some(match runtime::control::request(&path, "status") {
                Ok(v) if *json => {
                    println!("{v:#}");
                    ExitCode::SUCCESS
                }
                Ok(v) => {
                    print!("{}", dnsd::status::text(&v));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dnsd status: {e}");
                    ExitCode::FAILURE
                }
            })
        }
        None => None,
    }
}

fn check(t: &hostfile::HostTable) -> Result<String, CheckFailed> {
    let v = dnsd::view(t);
    match dnsd::check_zones(&v) {
        Ok(()) => Ok(dnsd::summary(&v)),
        Err(e) => Err(CheckFailed {
            // A zone file's own syntax errors carry their fix; a conflict with the host table
            // has this one.
            fix: matches!(e, dnsd::zone::ZoneError::Conflict { .. }).then_some(
                "correct the zone file or remove the record the host table already defines",
            ),
            problem: Box::new(e),
        }),
    }
}

/// dnsd keeps no capability, so it drops root in `run`, once its sockets are bound; before that,
/// as root, the folders and files it writes are handed over (and a missing user stops the start).
fn prepare(cli: &dnsd::Cli) -> Result<(), runtime::privdrop::Error> {
    let v = dnsd::view(&runtime::daemon::load_or_exit(&cli.common.config));
    let files = [
        cli.common.state_path(&v.store),
        cli.common.runtime_path(&v.control_socket),
    ];
    let given = [&cli.common.state_dir, &cli.common.runtime_dir];
    let folders: Vec<_> = given
        .into_iter()
        .flatten()
        .filter(|d| d.is_dir())
        .cloned()
        .collect();
    runtime::privdrop::prepare(&cli.user, &folders, &files)
}
