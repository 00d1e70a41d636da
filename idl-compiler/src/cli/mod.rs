//! The `tidl` command as a function (feature `cli`): [`run`] takes the arguments, the standard
//! streams and a future that resolves on Ctrl-C, so that tests (and other programs) run it in
//! process. The `tidl` binary is `run` on the process's own.
//!
//! The commands that read files (`check`, `gen`, `fmt`, `compat`) are in `files`; those that talk
//! to a running server (`call`, `list`, `describe`, `health`) in `remote`, `call` and `show`.
//!
//! # Exit statuses
//!
//! | Status   | Meaning                                                                                 |
//! |----------|-----------------------------------------------------------------------------------------|
//! | 0        | success; `tidl health`: the server (or service) is serving                              |
//! | 1        | a `.tidl` file has errors or cannot be read or written (`fmt --check`: is not formatted); the schema cannot be had (the server serves no reflection) |
//! | 2        | bad usage: an unknown command or flag, an unknown method, JSON that does not fit the type |
//! | 3        | `tidl call`: the method failed with its declared error (printed as JSON)               |
//! | 4        | `tidl health`: the server (or service) is not serving, or unknown                       |
//! | 64 + *c* | the call failed with a status of code *c* (printed as JSON): 65 cancelled, 68 deadline exceeded, 76 unimplemented, 78 unavailable (nothing listens, or the server is shutting down) |
//! | 130      | interrupted (Ctrl-C): the call was cancelled, and the server told to stop it           |
//!
//! `tidl compat` has statuses of its own: 0 if the changes are safe (in some order), 1 if one is
//! breaking, 2 for bad usage or errors in either version.

mod call;
mod files;
mod remote;
mod show;

use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncBufRead;

/// The standard streams `tidl` reads and writes.
pub struct Io<'a> {
    /// Where a call's argument (`-`) or stream items come from.
    pub stdin: &'a mut (dyn AsyncBufRead + Unpin + Send),
    /// Replies, listings, generated code.
    pub stdout: &'a mut (dyn Write + Send),
    /// Diagnostics and errors.
    pub stderr: &'a mut (dyn Write + Send),
}

impl std::fmt::Debug for Io<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io").finish_non_exhaustive()
    }
}

/// Runs the `tidl` command with `args` (the program's name first, as `std::env::args_os`
/// gives them) and returns its exit status (see the [module docs](self)). A call in flight when
/// `cancel` resolves is cancelled (the server is told to stop it), and the status is 130.
///
/// ```no_run
/// # async fn run() {
/// let mut stdin: &[u8] = b"";
/// let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
/// let io = tidl_compiler::cli::Io { stdin: &mut stdin, stdout: &mut stdout, stderr: &mut stderr };
/// let args = ["tidl", "call", "127.0.0.1:23333", "Example.echo", "\"hi\""];
/// let status = tidl_compiler::cli::run(args, io, std::future::pending()).await;
/// assert_eq!((status, stdout), (0, b"\"hi\"\n".to_vec()));
/// # }
/// ```
pub async fn run<I, T>(args: I, io: Io<'_>, cancel: impl Future<Output = ()> + Send) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().ansi().to_string();
            let out = if e.use_stderr() { &mut *io.stderr } else { &mut *io.stdout };
            let _ = out.write_all(text.as_bytes());
            return u8::try_from(e.exit_code()).unwrap_or(USAGE);
        }
    };
    let cancel: remote::Cancel<'_> = std::pin::pin!(cancel);
    let mut io = io;
    match cli.command {
        Command::Check { files, include } => files::check(&mut io, &include, &files),
        Command::Gen { files, out_dir, include, client_only, server_only } => {
            files::generate_code(&mut io, &include, &files, out_dir.as_deref(), client_only, server_only)
        }
        Command::Fmt { files, check } => files::fmt(&mut io, files, check),
        Command::Compat { old, new, include, format } => files::compat(&mut io, &include, &old, &new, format),
        Command::Call(args) => call::run(io, args, cancel).await,
        Command::List(args) => show::list(io, args, cancel).await,
        Command::Describe(args) => show::describe(io, args, cancel).await,
        Command::Health(args) => remote::health(io, args, cancel).await,
    }
}

/// Exit statuses (see the module docs).
const OK: u8 = 0;
const FAILED: u8 = 1;
const USAGE: u8 = 2;
const APP_ERROR: u8 = 3;
const NOT_SERVING: u8 = 4;
const INTERRUPTED: u8 = 130;

/// The exit status of a call that failed with `code`: 64 and the code's number.
fn status_exit(code: tidl_runtime::Code) -> u8 {
    64 + u8::try_from(code.as_u16()).unwrap_or(2)
}

/// Checks .tidl service definitions, generates Rust from them, formats them; calls, lists and
/// probes running servers.
#[derive(Debug, Parser)]
#[command(
    name = "tidl",
    version,
    after_help = "Exit status: 0 on success; 1 if a file has errors, cannot be read or written, or is not \
                  formatted (fmt --check), or no schema can be had; 2 for bad usage (a flag, a method, JSON \
                  that does not fit).\n\
                  tidl call: 3 if the method failed with its declared error; 64 + the code of a failed call's \
                  status (68: deadline exceeded, 78: unavailable); 130 on Ctrl-C (the call is cancelled).\n\
                  tidl health: 0 if serving, 4 if not serving or unknown, 64 + the code if the check failed.\n\
                  tidl compat: 0 if every change is safe or safe in the order it prints (servers first, clients \
                  first); 1 if a change is breaking; 2 for bad usage or if either version has errors."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Reports every error in the given files and the files they import, rustc-style; prints
    /// nothing if all is well.
    Check {
        /// The .tidl files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also look for imported files in DIR (after the importing file's own directory).
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        include: Vec<PathBuf>,
    },
    /// Prints the Rust generated from the files and what they import, as one file (each shared
    /// module once), or writes one NAME.rs per file to a directory.
    Gen {
        /// The .tidl files to compile.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write NAME.rs files here instead of printing (a file is rewritten only if it changes).
        #[arg(short, long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Also look for imported files in DIR (after the importing file's own directory).
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        include: Vec<PathBuf>,
        /// Generate only clients.
        #[arg(long, conflicts_with = "server_only")]
        client_only: bool,
        /// Generate only servers (service traits and their server wrappers).
        #[arg(long)]
        server_only: bool,
    },
    /// Rewrites files in the canonical layout, and lists the files it changed; only whitespace
    /// and trailing commas change, and comments stay.
    Fmt {
        /// The .tidl files to format, or directories: every .tidl file below them, skipping
        /// target and hidden directories. Default: the current directory.
        files: Vec<PathBuf>,
        /// Change nothing; list the files that are not formatted, and exit with 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Compares two versions of a schema and lists every change on the wire with its verdict:
    /// safe, safe if servers (or clients) are upgraded first, or breaking.
    Compat {
        /// The old version's root file.
        old: PathBuf,
        /// The new version's root file.
        new: PathBuf,
        /// Also look for imported files in DIR (after the importing file's own directory).
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        include: Vec<PathBuf>,
        /// How to print the findings.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Calls a method of a running server with a JSON argument, and prints its reply as JSON
    /// (a stream's items one per line). Ctrl-C cancels the call, and the server stops it.
    Call(CallArgs),
    /// Lists the services a running server serves, with their methods and doc comments.
    List(ListArgs),
    /// Shows a method, a service or a type of a running server, with every type it uses.
    Describe(DescribeArgs),
    /// Asks a running server whether it (or one of its services) is serving; exits with 0 if
    /// it is, 4 if not.
    Health(HealthArgs),
}

/// How `tidl compat` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Like compiler diagnostics, then a summary.
    Human,
    /// One JSON object, for CI.
    Json,
}

/// Where the schema comes from: the files given, or the server itself.
#[derive(Debug, clap::Args)]
struct SchemaArgs {
    /// Read the schema from this .tidl file (and what it imports) instead of asking the server
    /// (which needs ServerBuilder::reflection); repeatable.
    #[arg(long = "schema", value_name = "FILE")]
    schema: Vec<PathBuf>,
    /// Also look for files the schema imports in DIR (after the importing file's own directory).
    #[arg(short = 'I', long = "include", value_name = "DIR")]
    include: Vec<PathBuf>,
}

/// How to reach the server: plain TCP, or TLS when a CA is given.
#[derive(Debug, Default, clap::Args)]
struct TlsArgs {
    /// Connect over TLS, trusting the CA certificates in this PEM file.
    #[arg(long = "ca", value_name = "PEM")]
    ca: Option<PathBuf>,
    /// For mutual TLS: this client's certificate chain (PEM); needs --key and --ca.
    #[arg(long, value_name = "PEM", requires_all = ["key", "ca"])]
    cert: Option<PathBuf>,
    /// For mutual TLS: the private key of --cert (PEM).
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// The name the server's certificate must be for (default: the host of ADDR); needs --ca.
    #[arg(long = "server-name", value_name = "NAME", requires = "ca")]
    server_name: Option<String>,
}

#[derive(Debug, clap::Args)]
struct CallArgs {
    /// The server: HOST:PORT.
    addr: String,
    #[command(flatten)]
    tls: TlsArgs,
    /// The method, as SERVICE.METHOD (the service's wire name: `shop.Shop.place`) or
    /// SERVICE/METHOD.
    method: String,
    /// The argument as JSON, or `-` to read it from standard input; may be left out if the
    /// method takes `()`. A stream of requests reads its items from standard input instead,
    /// one JSON value per line.
    json: Option<String>,
    #[command(flatten)]
    schema: SchemaArgs,
    /// Fail the call with DeadlineExceeded after this long (the server stops it then): 250ms,
    /// 3s, 1.5m, 1h.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Metadata sent with the call, as KEY=VALUE (or `KEY: VALUE`); repeatable.
    #[arg(short = 'H', long = "metadata", value_name = "KEY=VALUE", value_parser = parse_metadata)]
    metadata: Vec<(String, String)>,
    /// Print the reply on one line instead of indented.
    #[arg(long)]
    compact: bool,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// The server: HOST:PORT.
    addr: String,
    #[command(flatten)]
    tls: TlsArgs,
    /// Only this service (by wire name: `shop.Shop`).
    service: Option<String>,
    #[command(flatten)]
    schema: SchemaArgs,
}

#[derive(Debug, clap::Args)]
struct DescribeArgs {
    /// The server: HOST:PORT.
    addr: String,
    #[command(flatten)]
    tls: TlsArgs,
    /// What to show: a method (`shop.Shop.place`), a service (`shop.Shop`) or a type
    /// (`shop.Order`).
    name: String,
    #[command(flatten)]
    schema: SchemaArgs,
}

#[derive(Debug, clap::Args)]
struct HealthArgs {
    /// The server: HOST:PORT.
    addr: String,
    #[command(flatten)]
    tls: TlsArgs,
    /// A service's status (its wire name: `shop.Shop`) instead of the whole server's.
    service: Option<String>,
    /// Give up after this long, connecting included (exit status 68): 250ms, 3s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
    timeout: Duration,
    /// Print the status, then every change, until the server shuts down or Ctrl-C; the exit
    /// status is the last status's.
    #[arg(long)]
    watch: bool,
}

/// A duration as `250ms`, `3s`, `1.5m` or `1h` (a bare number is seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration: write 250ms, 3s, 1.5m or 1h"))?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        unit => return Err(format!("unknown unit `{unit}`: write ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}` is not a duration: {e}"))
}

/// Metadata as `KEY=VALUE` or `KEY: VALUE`.
fn parse_metadata(text: &str) -> Result<(String, String), String> {
    let (key, value) = match (text.find('='), text.find(':')) {
        (Some(eq), Some(colon)) => text.split_at(eq.min(colon)),
        (Some(at), None) | (None, Some(at)) => text.split_at(at),
        (None, None) => return Err(format!("`{text}` is not metadata: write KEY=VALUE")),
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("`{text}` has no key: write KEY=VALUE"));
    }
    Ok((key.to_owned(), value[1..].trim_start().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("3 fortnights").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn metadata_reads_as_key_value_or_as_a_header() {
        assert_eq!(parse_metadata("tenant=acme"), Ok(("tenant".into(), "acme".into())));
        assert_eq!(parse_metadata("authorization: Bearer x=y"), Ok(("authorization".into(), "Bearer x=y".into())));
        assert!(parse_metadata("nothing").is_err());
        assert!(parse_metadata("=x").is_err());
    }
}
