//! `dnsd` command line: parse, set up logging, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = dnsd::Cli::parse();
    runtime::daemon::init_tracing(&cli.common);
    if let Some(dnsd::Cmd::Import(args)) = &cli.cmd {
        let code = import::command::run(args, import::Format::Zone);
        return std::process::ExitCode::from(code as u8);
    }
    if let Some(dnsd::Cmd::Status { json }) = &cli.cmd {
        let t = runtime::daemon::load_or_exit(&cli.common.config);
        let path = cli.common.runtime_path(&dnsd::view(&t).control_socket);
        return match runtime::control::request(&path, "status") {
            Ok(v) if *json => {
                println!("{v:#}");
                std::process::ExitCode::SUCCESS
            }
            Ok(v) => {
                print!("{}", dnsd::status::text(&v));
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dnsd status: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if cli.common.check {
        let t = runtime::daemon::load_or_exit(&cli.common.config);
        if let Err(e) = dnsd::check_zones(&dnsd::view(&t)) {
            eprintln!("{}: {e}", cli.common.config.display());
            if matches!(e, dnsd::zone::ZoneError::Conflict { .. }) {
                eprintln!(
                    "fix: correct the zone file or remove the record the host table already defines"
                );
            }
            std::process::exit(64);
        }
        runtime::daemon::check_and_exit(&cli.common.config, |t| dnsd::summary(&dnsd::view(t)));
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dnsd: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(dnsd::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
