//! `drfailover dns --config FILE show|set`: see and set the record(s) an orchestrator manages,
//! from the `[[announce]]` tables of its TOML file, so an operator can test a configuration
//! before an incident. Other sections of the file are ignored.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use drfailover_dns::{AnnounceOutcome, Announcer, AnnouncerConfig, NodeAddress, WriterChange};

/// Arguments of `drfailover dns`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The orchestrator's TOML file; only its `[[announce]]` tables are read.
    #[arg(long)]
    config: PathBuf,
    /// Deadline of each announcer, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Print what each announcer's record holds now.
    Show,
    /// Point every announcer's record at a node, as the orchestrator does after a promotion.
    Set {
        /// The node's name (the key of an announcer's `addresses` map, if any).
        #[arg(long)]
        node: String,
        /// The node's host: an IP address (A/AAAA) or a DNS name (CNAME).
        #[arg(long)]
        host: String,
        /// The address the record must hold now (compare-and-swap); without it, the record is
        /// read first and swapped against what was read.
        #[arg(long)]
        old: Option<String>,
    },
}

/// Parse `text` as TOML and build the announcers of its `[[announce]]` tables.
fn announcers(text: &str, file: &Path) -> Result<Vec<Box<dyn Announcer>>, String> {
    // The parser's own message quotes the offending line, which may hold a secret.
    let value: toml::Value = toml::from_str(text).map_err(|e: toml::de::Error| {
        format!(
            "{}: not valid TOML: {}",
            file.display(),
            drfailover_files::describe_parse_error(text, e.span(), e.message())
        )
    })?;
    let Some(list) = value.get("announce") else {
        return Err(format!(
            "{}: no [[announce]] table: nothing to show or set",
            file.display()
        ));
    };
    let list = list.as_array().ok_or_else(|| {
        format!(
            "{}: `announce` must be an array of tables ([[announce]])",
            file.display()
        )
    })?;
    list.iter()
        .enumerate()
        .map(|(i, table)| {
            let config: AnnouncerConfig =
                table.clone().try_into().map_err(|e: toml::de::Error| {
                    format!(
                        "{}: [[announce]] #{}: {}",
                        file.display(),
                        i + 1,
                        drfailover_files::describe_parse_error("", None, e.message())
                    )
                })?;
            config
                .build()
                .map_err(|e| format!("{}: [[announce]] #{}: {e}", file.display(), i + 1))
        })
        .collect()
}

/// Exit 0 when every announcer succeeded, 1 when one failed, 2 for a configuration error.
pub fn run(args: Args) -> ExitCode {
    // At most 1 MiB, regular files only (never blocks on a FIFO or reads /dev/zero).
    let text = match drfailover_files::read_text(&args.config, drfailover_files::CONFIG_FILE_LIMIT)
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    let announcers = match announcers(&text, &args.config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut failed = false;
    for announcer in &announcers {
        println!("{}", announcer.describe());
        let deadline = Instant::now() + timeout;
        match &args.action {
            Action::Show => match announcer.current(deadline) {
                Ok(records) if records.is_empty() => println!("  (no A/AAAA/CNAME record)"),
                Ok(records) => records.iter().for_each(|r| println!("  {r}")),
                Err(e) => {
                    failed = true;
                    println!("  FAILED: {e}");
                }
            },
            Action::Set { node, host, old } => {
                let change = WriterChange {
                    old_writer: old.as_ref().map(|h| NodeAddress::new("", h.clone())),
                    new_writer: NodeAddress::new(node.clone(), host.clone()),
                };
                let started = Instant::now();
                match announcer.announce(&change, deadline) {
                    Ok(AnnounceOutcome::Changed {
                        published,
                        attempts,
                    }) => println!(
                        "  changed to {published} in {:.1} ms ({attempts} attempt(s))",
                        started.elapsed().as_secs_f64() * 1000.0
                    ),
                    Ok(AnnounceOutcome::AlreadyCurrent { published }) => {
                        println!("  already {published}: nothing to do")
                    }
                    Err(e) => {
                        failed = true;
                        println!("  FAILED: {e}");
                    }
                }
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
