//! `lbd` command line: parse, set up logging, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = lbd::Cli::parse();
    runtime::daemon::init_tracing(&cli.common);
    match &cli.command {
        Some(lbd::Command::Status { json }) => {
            return std::process::ExitCode::from(lbd::status_command(&cli, *json) as u8);
        }
        Some(lbd::Command::Import(args)) => {
            let code = import::command::run(args, import::Format::Keepalived);
            return std::process::ExitCode::from(code as u8);
        }
        None => {}
    }
    if cli.common.check {
        runtime::daemon::check_and_exit(&cli.common.config, |t| lbd::summary(&lbd::view(t)));
    }
    if let Err(e) = lbd::drop_privileges(&cli) {
        eprintln!("lbd: cannot drop privileges to {}: {e:#}", cli.user);
        return std::process::ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lbd: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(lbd::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
