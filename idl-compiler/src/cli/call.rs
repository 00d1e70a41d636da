//! `tidl call`: one call of any method, its argument from JSON, its outcome printed as JSON.
//!
//! The argument is encoded with the method's schema (`dynamic`) into the bytes generated code
//! would send, and sent through a real [`Client`] with the method's schema, so the server checks
//! it against its own before the first call. A reply or item is decoded back to JSON. Dropping
//! the call (on Ctrl-C) cancels it: the client sends the cancel frame, the server drops the
//! handler.

use super::remote::{self, Cancel, Exit, Out, failed};
use super::{APP_ERROR, CallArgs, INTERRUPTED, Io, OK, USAGE};
use crate::dynamic::value::Value;
use crate::dynamic::{CallKind, MethodSchema, Part, Schema};
use serde_json::Value as Json;
use tidl_runtime::{CallOptions, Client, Code, Invoke, Reply, Request, RequestSink, Status};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// `tidl call`.
pub(super) async fn run(io: Io<'_>, args: CallArgs, mut cancel: Cancel<'_>) -> u8 {
    let Io { stdin, stdout, stderr } = io;
    let mut out = Out { stdout, stderr };
    match call(stdin, &mut out, &args, &mut cancel).await {
        Ok(exit) | Err(exit) => exit,
    }
}

async fn call(
    stdin: &mut (dyn AsyncBufRead + Unpin + Send),
    out: &mut Out<'_>,
    args: &CallArgs,
    cancel: &mut Cancel<'_>,
) -> Result<Exit, Exit> {
    // With the schema in files, the method and the argument are checked before connecting.
    let files = if args.schema.schema.is_empty() { None } else { Some(remote::from_files(out, &args.schema)?) };
    let early = match &files {
        Some(schema) => {
            let method = method(out, schema, &args.method)?;
            Some(argument(stdin, out, cancel, &method, args.json.as_deref()).await?)
        }
        None => None,
    };
    let client = remote::connect(out, cancel, &args.addr, &args.tls, None).await?;
    let served;
    let (schema, argument) = match (&files, early) {
        (Some(schema), Some(argument)) => (schema, argument),
        _ => {
            // The call's own timeout bounds asking for the schema too.
            let timeout = args.timeout.map_or(remote::SCHEMA_TIMEOUT, |t| t.min(remote::SCHEMA_TIMEOUT));
            served = remote::schema(out, cancel, &args.schema, &client, &args.addr, timeout).await?;
            let method = method(out, &served, &args.method)?;
            let argument = argument(stdin, out, cancel, &method, args.json.as_deref()).await?;
            (&served, argument)
        }
    };
    let method = method(out, schema, &args.method)?;
    let mut options = CallOptions::default();
    if let Some(timeout) = args.timeout {
        options = options.timeout(timeout);
    }
    for (key, value) in &args.metadata {
        options = options.metadata(key.clone(), value.clone());
    }
    let call = Call { method, client: &client, options, compact: args.compact };
    match (method.kind(), argument) {
        (CallKind::Unary, Some(argument)) => call.unary(out, cancel, argument).await,
        (CallKind::ServerStreaming, Some(argument)) => call.server_stream(out, cancel, argument).await,
        (CallKind::ClientStreaming, _) => call.client_stream(stdin, out, cancel).await,
        (CallKind::Bidi, _) => call.bidi(stdin, out, cancel).await,
        (_, None) => unreachable!("a method that takes one argument has one"),
    }
}

/// The method `name` of `schema`, or a usage error listing the methods there are.
fn method<'s>(out: &mut Out<'_>, schema: &'s Schema, name: &str) -> Result<MethodSchema<'s>, Exit> {
    schema.method(name).map_err(|message| {
        let _ = writeln!(out.stderr, "error: {message}");
        USAGE
    })
}

/// The argument of `method` as a checked value: from `json` (standard input for `-`), or `null`
/// for a method that takes `()`; a usage error if it is not there or does not fit. `None` for a
/// method that streams its requests: they come from standard input. Ctrl-C interrupts the
/// reading.
async fn argument(
    stdin: &mut (dyn AsyncBufRead + Unpin + Send),
    out: &mut Out<'_>,
    cancel: &mut Cancel<'_>,
    method: &MethodSchema<'_>,
    json: Option<&str>,
) -> Result<Option<Value>, Exit> {
    let name = format!("{}.{}", method.service(), method.name());
    let ty = method.type_name(Part::Argument);
    if matches!(method.kind(), CallKind::ClientStreaming | CallKind::Bidi) {
        return match json {
            None | Some("-") => Ok(None),
            Some(_) => Err(usage(
                out,
                &format!(
                    "`{name}` streams its requests: give them on standard input, one JSON value (`{ty}`) per line"
                ),
            )),
        };
    }
    let text = match json {
        Some("-") => {
            let mut text = String::new();
            if let Err(e) = remote::or_cancelled(out, cancel, stdin.read_to_string(&mut text)).await? {
                return Err(usage(out, &format!("reading the argument from standard input failed: {e}")));
            }
            text
        }
        Some(text) => text.to_owned(),
        None if ty == "()" => "null".to_owned(),
        None => {
            return Err(usage(
                out,
                &format!("`{name}` takes `{ty}`: give it as JSON, or `-` to read it from standard input"),
            ));
        }
    };
    let json: Json = serde_json::from_str(&text).map_err(|e| usage(out, &format!("the argument is not JSON: {e}")))?;
    method
        .value(Part::Argument, &json)
        .map(Some)
        .map_err(|e| usage(out, &format!("the argument does not fit `{ty}`, what `{name}` takes: {e}")))
}

/// One call being made.
struct Call<'a> {
    method: MethodSchema<'a>,
    client: &'a Client,
    options: CallOptions,
    compact: bool,
}

impl Call<'_> {
    fn name(&self) -> String {
        format!("`{}.{}`", self.method.service(), self.method.name())
    }

    async fn unary(&self, out: &mut Out<'_>, cancel: &mut Cancel<'_>, argument: Value) -> Result<Exit, Exit> {
        let payload = tidl_runtime::payload::encode(&argument).map_err(|e| {
            let _ = writeln!(out.stderr, "error: the argument could not be encoded: {e}");
            USAGE
        })?;
        let request = Request::from_payload(self.method.runtime_method(), payload, self.options.clone());
        // Dropped on Ctrl-C, which cancels the call.
        let reply = self.client.invoke(request);
        tokio::select! {
            biased;
            () = cancel.as_mut() => Err(self.cancelled(out)),
            reply = reply => Ok(self.outcome(out, reply)),
        }
    }

    async fn server_stream(&self, out: &mut Out<'_>, cancel: &mut Cancel<'_>, argument: Value) -> Result<Exit, Exit> {
        let method = self.method.runtime_method();
        let mut items = self.client.server_stream::<_, (), ()>(method, &argument, &self.options);
        loop {
            let next = tokio::select! {
                biased;
                () = cancel.as_mut() => return Err(self.cancelled(out)),
                next = items.next_payload() => next,
            };
            match next {
                Some(Ok(item)) => self.item(out, &item)?,
                Some(Err(reply)) => return Ok(self.outcome(out, reply)),
                None => return Ok(OK),
            }
        }
    }

    async fn client_stream(
        &self,
        stdin: &mut (dyn AsyncBufRead + Unpin + Send),
        out: &mut Out<'_>,
        cancel: &mut Cancel<'_>,
    ) -> Result<Exit, Exit> {
        let method = self.method.runtime_method();
        let (mut sink, call) = self.client.client_stream::<Value, (), ()>(method, &self.options);
        let mut feed = std::pin::pin!(feed(stdin, &mut sink, &self.method));
        let mut reply = std::pin::pin!(call.into_reply());
        let mut fed = false;
        loop {
            tokio::select! {
                biased;
                () = cancel.as_mut() => return Err(self.cancelled(out)),
                reply = reply.as_mut() => return Ok(self.outcome(out, reply)),
                result = feed.as_mut(), if !fed => {
                    fed = true;
                    result.map_err(|message| usage(out, &message))?;
                }
            }
        }
    }

    async fn bidi(
        &self,
        stdin: &mut (dyn AsyncBufRead + Unpin + Send),
        out: &mut Out<'_>,
        cancel: &mut Cancel<'_>,
    ) -> Result<Exit, Exit> {
        let method = self.method.runtime_method();
        let (mut sink, mut items) = self.client.bidi_stream::<Value, (), ()>(method, &self.options);
        let mut feed = std::pin::pin!(feed(stdin, &mut sink, &self.method));
        let mut fed = false;
        loop {
            tokio::select! {
                biased;
                () = cancel.as_mut() => return Err(self.cancelled(out)),
                next = items.next_payload() => match next {
                    Some(Ok(item)) => self.item(out, &item)?,
                    Some(Err(reply)) => return Ok(self.outcome(out, reply)),
                    None => return Ok(OK),
                },
                result = feed.as_mut(), if !fed => {
                    fed = true;
                    result.map_err(|message| usage(out, &message))?;
                }
            }
        }
    }

    /// Prints one item of a stream from the server, on a line of its own.
    fn item(&self, out: &mut Out<'_>, bytes: &[u8]) -> Result<(), Exit> {
        let json = self.decode(out, Part::Reply, bytes)?;
        let _ = writeln!(out.stdout, "{}", remote::printable_json(&json.to_string()));
        let _ = out.stdout.flush();
        Ok(())
    }

    /// Prints how the call ended; its exit status.
    fn outcome(&self, out: &mut Out<'_>, reply: Reply) -> Exit {
        let name = self.name();
        match reply {
            Reply::Ok(bytes) => match self.decode(out, Part::Reply, &bytes) {
                Ok(json) => {
                    self.print(out, &json);
                    OK
                }
                Err(exit) => exit,
            },
            Reply::App(bytes) => match self.decode(out, Part::Error, &bytes) {
                Ok(json) => {
                    self.print(out, &json);
                    let ty = self.method.type_name(Part::Error);
                    let _ = writeln!(out.stderr, "error: {name} failed with its declared error (`{ty}`)");
                    APP_ERROR
                }
                Err(exit) => exit,
            },
            Reply::Status(status) => failed(out, &name, &status),
        }
    }

    fn print(&self, out: &mut Out<'_>, json: &Json) {
        let text = if self.compact { json.to_string() } else { format!("{json:#}") };
        let _ = writeln!(out.stdout, "{}", remote::printable_json(&text));
        let _ = out.stdout.flush();
    }

    /// `bytes` as JSON; a failure to decode is printed as the `Internal` status a generated
    /// client would fail with.
    fn decode(&self, out: &mut Out<'_>, part: Part, bytes: &[u8]) -> Result<Json, Exit> {
        self.method.decode(part, bytes).map_err(|e| {
            let what = if part == Part::Error { "error" } else { "reply" };
            let status = Status::new(
                Code::Internal,
                format!(
                    "the {what} did not decode as `{}` ({e}); is the schema the server's?",
                    self.method.type_name(part)
                ),
            );
            failed(out, &self.name(), &status)
        })
    }

    /// The call was interrupted: dropping it (as the caller does next) cancels it.
    fn cancelled(&self, out: &mut Out<'_>) -> Exit {
        let message = format!("{} was cancelled (Ctrl-C); the server was told to stop it", self.name());
        let json = serde_json::json!({ "code": "Cancelled", "message": message });
        let _ = writeln!(out.stdout, "{json}");
        let _ = writeln!(out.stderr, "cancelled: {message}");
        INTERRUPTED
    }
}

fn usage(out: &mut Out<'_>, message: &str) -> Exit {
    let _ = writeln!(out.stderr, "error: {message}");
    USAGE
}

/// Sends the requests of a stream from standard input, one JSON value a line (blank lines
/// skipped), then closes the stream. Stops early, without error, once the call has ended (its
/// outcome says why); a line that is not JSON of the item type is an error.
async fn feed(
    stdin: &mut (dyn AsyncBufRead + Unpin + Send),
    sink: &mut RequestSink<Value>,
    method: &MethodSchema<'_>,
) -> Result<(), String> {
    let ty = method.type_name(Part::Argument);
    let mut lines = stdin.lines();
    let mut n = 0;
    while let Some(line) = lines.next_line().await.map_err(|e| format!("reading standard input failed: {e}"))? {
        n += 1;
        if line.trim().is_empty() {
            continue;
        }
        let json: Json =
            serde_json::from_str(&line).map_err(|e| format!("line {n} of standard input is not JSON: {e}"))?;
        let value = method
            .value(Part::Argument, &json)
            .map_err(|e| format!("line {n} of standard input does not fit `{ty}`: {e}"))?;
        if sink.send(value).await.is_err() {
            return Ok(());
        }
    }
    sink.close();
    Ok(())
}
