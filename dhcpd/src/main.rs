//! `dhcpd` command line: parse, set up logging, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = dhcpd::Cli::parse();
    shared::daemon::init_tracing(&cli.common);
    if let Some(dhcpd::Cmd::Import(args)) = &cli.cmd {
        let code = shared::import::command::run(args, shared::import::Format::IscDhcpd);
        return std::process::ExitCode::from(code as u8);
    }
    if cli.common.check {
        shared::daemon::check_and_exit(&cli.common.config, |t| dhcpd::summary(&dhcpd::view(t)));
    }
    if let Some(dhcpd::Cmd::Leases { json, all }) = cli.cmd {
        let t = shared::daemon::load_or_exit(&cli.common.config);
        let v = dhcpd::view(&t);
        let path = cli.common.state_path(&v.lease_db);
        return match dhcpd::list_leases(&path, v.lease_db_url.as_deref(), json, all) {
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
