//! What the commands that talk to a running server share: connecting, the schema (from files or
//! from the server's reflection), reporting a failed call; and `tidl health`.

use super::files::config;
use super::{FAILED, HealthArgs, INTERRUPTED, Io, NOT_SERVING, OK, SchemaArgs, TlsArgs, USAGE, status_exit};
use crate::Source;
use crate::dynamic::Schema;
use std::collections::HashSet;
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;
use tidl_runtime::health::{HealthClientExt, ServingStatus};
use tidl_runtime::reflection::ReflectionClientExt;
use tidl_runtime::transport::tcp::TcpConnector;
use tidl_runtime::transport::tls::{self, TlsConnector};
use tidl_runtime::{Client, ClientConfig, Code, Error, Status};
use tokio::time::Instant;

/// The future that resolves on Ctrl-C, pinned once for the whole command.
pub(super) type Cancel<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send)>;

/// What a command that gave up already printed why: its exit status.
pub(super) type Exit = u8;

/// Where a command that talks to a server prints: its standard output and error.
pub(super) struct Out<'a> {
    pub(super) stdout: &'a mut (dyn Write + Send),
    pub(super) stderr: &'a mut (dyn Write + Send),
}

/// Runs `work` unless `cancel` resolves first (then the work is dropped, which cancels a call
/// it was making, and the status is 130).
pub(super) async fn or_cancelled<T>(
    out: &mut Out<'_>,
    cancel: &mut Cancel<'_>,
    work: impl Future<Output = T>,
) -> Result<T, Exit> {
    tokio::select! {
        biased;
        () = cancel.as_mut() => {
            let _ = writeln!(out.stderr, "interrupted");
            Err(INTERRUPTED)
        }
        done = work => Ok(done),
    }
}

/// A connection to `addr`, over TLS if `tls` names a CA, made within `timeout` (the client's
/// default, 10 s, if none).
pub(super) async fn connect(
    out: &mut Out<'_>,
    cancel: &mut Cancel<'_>,
    addr: &str,
    tls: &TlsArgs,
    timeout: Option<Duration>,
) -> Result<Client, Exit> {
    let mut config = ClientConfig::default();
    if let Some(timeout) = timeout {
        config.connect_timeout = timeout;
    }
    let connected = match &tls.ca {
        None => or_cancelled(out, cancel, Client::dial_with(addr, config)).await?,
        Some(ca) => {
            let connector = match tls_connector(addr, ca, tls) {
                Ok(connector) => connector,
                Err(message) => {
                    let _ = writeln!(out.stderr, "error: {message}");
                    return Err(USAGE);
                }
            };
            or_cancelled(out, cancel, Client::connect_with(connector, config)).await?
        }
    };
    match connected {
        Ok(client) => Ok(client),
        Err(status) => Err(failed(out, &format!("connecting to {addr}"), &status)),
    }
}

/// A TLS connector to `addr` trusting the CA in `ca`, with the client certificate and server
/// name `tls` gives; or what is wrong with them.
fn tls_connector(addr: &str, ca: &Path, tls: &TlsArgs) -> Result<TlsConnector<TcpConnector>, String> {
    let read = |path: &Path| std::fs::read(path).map_err(|e| format!("could not read {}: {e}", path.display()));
    let ca = read(ca)?;
    let identity = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
        _ => None,
    };
    let config = tls::client_config(&ca, identity.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())))
        .map_err(|e| e.to_string())?;
    // The host of HOST:PORT (or [V6]:PORT), unless a name is given.
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host).trim_start_matches('[').trim_end_matches(']');
    let name = tls.server_name.as_deref().unwrap_or(host);
    TlsConnector::new(TcpConnector::new(addr), config, name).map_err(|e| e.to_string())
}

/// Prints that `what` failed with `status` (as JSON on standard output, in words on standard
/// error) and returns the exit status: 64 and the code's number.
pub(super) fn failed(out: &mut Out<'_>, what: &str, status: &Status) -> Exit {
    let json = serde_json::json!({ "code": format!("{:?}", status.code()), "message": status.message() });
    let _ = writeln!(out.stdout, "{}", printable_json(&json.to_string()));
    let _ = writeln!(out.stderr, "error: {what} failed: {}", printable(&status.to_string()));
    status_exit(status.code())
}

/// `text` (which may come from a server) with its control characters but line breaks and tabs
/// shown escaped (`\u{1b}`), so that it cannot move the terminal's cursor, change its colours
/// or set its clipboard.
pub(super) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(text, |c| c.escape_unicode().to_string())
}

/// JSON text with the control characters serde_json leaves as they are (DEL and the C1
/// controls, which can only be inside its strings) escaped as JSON escapes them (`\u009b`): the
/// same value, harmless on a terminal.
pub(super) fn printable_json(json: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(json, |c| format!("\\u{:04x}", u32::from(c)))
}

fn escape_controls(text: &str, escape: impl Fn(char) -> String) -> std::borrow::Cow<'_, str> {
    let control = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(control) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars().map(|c| if control(c) { escape(c) } else { c.to_string() }).collect()
}

/// How long the server may take to send its schema, at most: a server that never answers must
/// not hang the tool.
pub(super) const SCHEMA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The schema: from the files given, or else from the server's reflection (through `client`),
/// within `timeout`.
pub(super) async fn schema(
    out: &mut Out<'_>,
    cancel: &mut Cancel<'_>,
    args: &SchemaArgs,
    client: &Client,
    addr: &str,
    timeout: std::time::Duration,
) -> Result<Schema, Exit> {
    if !args.schema.is_empty() {
        return from_files(out, args);
    }
    let reply = or_cancelled(out, cancel, client.reflection().timeout(timeout).schema(())).await?;
    let served = match reply {
        Ok(served) => served,
        Err(Error::Status(status)) if status.code() == Code::Unimplemented => {
            let _ = writeln!(
                out.stderr,
                "error: {addr} does not serve its schema: build the server with ServerBuilder::reflection(), or give \
                 the .tidl file with --schema FILE"
            );
            return Err(FAILED);
        }
        Err(Error::Status(status)) => return Err(failed(out, "asking the server for its schema", &status)),
        Err(Error::App(message)) => {
            let _ = writeln!(out.stderr, "error: asking {addr} for its schema failed: {}", printable(&message));
            return Err(FAILED);
        }
    };
    let groups: Vec<(Vec<Source<'_>>, HashSet<String>)> = served
        .sources
        .iter()
        .map(|source| {
            let files = source.files.iter().map(|f| Source { path: &f.path, text: &f.text }).collect();
            (files, source.services.iter().cloned().collect())
        })
        .collect();
    Schema::from_served(&groups).map_err(|e| {
        let _ = writeln!(
            out.stderr,
            "{}\nerror: the schema {addr} serves does not compile (is it a tidl server?)",
            printable(&e.to_string())
        );
        FAILED
    })
}

/// The schema of the files given with `--schema`.
pub(super) fn from_files(out: &mut Out<'_>, args: &SchemaArgs) -> Result<Schema, Exit> {
    Schema::load(&config(&args.include), &args.schema).map_err(|e| {
        let _ = writeln!(out.stderr, "{e}");
        FAILED
    })
}

/// `tidl health`: 0 if serving, 4 if not.
pub(super) async fn health(io: Io<'_>, args: HealthArgs, mut cancel: Cancel<'_>) -> u8 {
    let out = &mut Out { stdout: io.stdout, stderr: io.stderr };
    let started = Instant::now();
    let client = match connect(out, &mut cancel, &args.addr, &args.tls, Some(args.timeout)).await {
        Ok(client) => client,
        Err(exit) => return exit,
    };
    let service = args.service.unwrap_or_default();
    let what =
        if service.is_empty() { "the health check".to_owned() } else { format!("the health check of {service}") };
    if !args.watch {
        let left = args.timeout.saturating_sub(started.elapsed());
        let check = client.health().timeout(left).check(service.clone());
        return match or_cancelled(out, &mut cancel, check).await {
            Ok(Ok(status)) => report(out, status),
            Ok(Err(e)) => failed(out, &what, &as_status(e)),
            Err(exit) => exit,
        };
    }
    let mut watch = client.health().watch(service);
    let mut last = ServingStatus::UnknownService;
    loop {
        match or_cancelled(out, &mut cancel, watch.message()).await {
            Ok(Ok(Some(status))) => {
                last = status;
                report(out, status);
            }
            Ok(Ok(None)) => return if last == ServingStatus::Serving { OK } else { NOT_SERVING },
            Ok(Err(e)) => return failed(out, &what, &as_status(e)),
            Err(exit) => return exit,
        }
    }
}

/// Prints a health status; its exit status.
fn report(out: &mut Out<'_>, status: ServingStatus) -> u8 {
    let _ = match status {
        ServingStatus::Unknown(index) => writeln!(out.stdout, "Unknown({index})"),
        status => writeln!(out.stdout, "{status:?}"),
    };
    let _ = out.stdout.flush();
    if status == ServingStatus::Serving { OK } else { NOT_SERVING }
}

/// A typed call's error as a status (the built-in services declare no errors of their own).
fn as_status(e: Error) -> Status {
    match e {
        Error::Status(status) => status,
        Error::App(message) => Status::unknown(message),
    }
}
