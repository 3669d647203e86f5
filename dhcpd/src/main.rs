//! `dhcpd` command line: parse, set up logging, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = dhcpd::Cli::parse();
    runtime::daemon::init_tracing(&cli.common);
    if let Some(dhcpd::Cmd::Import(args)) = &cli.cmd {
        let code = import::command::run(args, import::Format::IscDhcpd);
        return std::process::ExitCode::from(code as u8);
    }
    if cli.common.check {
        runtime::daemon::check_and_exit(&cli.common.config, |t| dhcpd::summary(&dhcpd::view(t)));
    }
    if let Some(dhcpd::Cmd::Leases { json, all }) = cli.cmd {
        return match dhcpd::leases_command(&cli, json, all) {
            Ok(s) => {
                print!("{s}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dhcpd leases: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Err(e) = dhcpd::drop_privileges(&cli) {
        eprintln!("dhcpd: cannot drop privileges to {}: {e:#}", cli.user);
        return std::process::ExitCode::FAILURE;
    }
    // One thread for the packet path (no cross-thread wake-ups per packet); lease commits run on
    // their own thread, ping checks on the blocking pool.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dhcpd: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(dhcpd::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
