//! `tidl`: checks, generates and formats `.tidl` files; calls, lists and probes running servers.
//! Everything is [`tidl_compiler::cli::run`], on the process's standard streams, with Ctrl-C
//! cancelling a call in flight. Its documentation lists the exit statuses.

use std::process::ExitCode;
use tidl_compiler::cli::{Io, run};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let status = runtime.block_on(async {
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
        let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
        let io = Io { stdin: &mut stdin, stdout: &mut stdout, stderr: &mut stderr };
        // Ctrl-C: the call in flight is dropped, which cancels it. If the signal cannot be
        // listened for, calls are not interrupted.
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        run(std::env::args_os(), io, ctrl_c).await
    });
    // Not waiting for standard input's reader thread, which may be blocked in a read no one
    // wants any more. The connection's tasks end with the runtime; a cancel still queued is not
    // lost: the server cancels what a closed connection left running.
    runtime.shutdown_background();
    ExitCode::from(status)
}
