//! The `import` subcommand every daemon has: `dhcpd import dhcpd.conf`, `dnsd import db.zone`,
//! `lbd import keepalived.conf`, or any of them with several files of mixed formats, merged into
//! one host file.

use std::path::PathBuf;

use crate::imported::{Format, Imported, import_file, merge};
use crate::source::ImportError;
use crate::zonefile;
use hostfile::EXIT_CONFIG;

/// Arguments of `import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Files to import: ISC dhcpd.conf, BIND zone files, keepalived.conf; several are merged
    /// into one host file.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Origin for zone files that have no $ORIGIN (e.g. it-ishin.com).
    #[arg(long)]
    pub origin: Option<String>,
    /// Read every file as this format instead of detecting it.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Write the host file here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// ISC dhcpd.conf.
    IscDhcpd,
    /// BIND zone file.
    Zone,
    /// keepalived.conf.
    Keepalived,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::IscDhcpd => Format::IscDhcpd,
            FormatArg::Zone => Format::Zone,
            FormatArg::Keepalived => Format::Keepalived,
        }
    }
}

/// Runs `import`; `fallback` is the format a file is read as when it cannot be told from its name
/// or text (the daemon's own: dhcpd reads dhcpd.conf). Returns the exit code: 0, 64 when an input
/// is malformed or the result does not validate, 66 when a file cannot be read.
pub fn run(args: &ImportArgs, fallback: Format) -> i32 {
    let mut parts: Vec<Imported> = Vec::new();
    for f in &args.files {
        let format = match args.format {
            Some(fa) => fa.into(),
            None => crate::source::read_lossy(f)
                .ok()
                .and_then(|t| Format::detect(f, &t))
                .unwrap_or(fallback),
        };
        match import_file(format, f, args.origin.as_deref()) {
            Ok(p) => parts.push(p),
            Err(
                e @ (ImportError::Read { .. }
                | ImportError::Zone(zonefile::ZoneFileError::Read { .. })),
            ) => {
                eprintln!("{e}");
                return 66;
            }
            Err(e) => {
                eprintln!("{e}");
                eprintln!("nothing was written: fix the input at that line and run import again");
                return EXIT_CONFIG;
            }
        }
    }
    let merged = if parts.len() == 1 {
        parts.remove(0)
    } else {
        merge(parts)
    };
    for u in &merged.unsupported {
        eprintln!("{u}");
    }
    for g in &merged.guesses {
        eprintln!("{g}");
    }
    let loud: Vec<_> = merged.warnings().collect();
    if !loud.is_empty() {
        eprintln!(
            "WARNING: {} thing(s) the old configuration protected are weaker or off in the host file until you act:",
            loud.len()
        );
        for u in loud {
            eprintln!("  {u}");
        }
    }
    let text = merged.to_toml();
    let code = match merged.check() {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("the imported host file does not validate yet:\n{e}");
            EXIT_CONFIG
        }
    };
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                eprintln!("{}: cannot write: {e}", path.display());
                return 73;
            }
            eprintln!(
                "wrote {} ({} not imported, {} guessed; see the comments in the file)",
                path.display(),
                merged.unsupported.len(),
                merged.guesses.len()
            );
        }
        None => print!("{text}"),
    }
    code
}
