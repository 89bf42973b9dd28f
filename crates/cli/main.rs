//! `instar`: the command line of a drop-in replacement for `qemu-img
//! create`, `info` and `check`. The binary hands its arguments to the
//! command-line library ([`instar_cli`], `lib.rs`), which parses and runs
//! them, then prints the failure, if any, and exits with the code.

use instar_core::rawtext;
use std::io::Write;
use std::process::ExitCode;

/// The program as invoked (`argv[0]`), which qemu-img's usage errors name
/// (getopt's messages and the `Try '... --help'` hint).
fn argv0() -> String {
    std::env::args_os()
        .next()
        .map_or_else(|| instar_cli::PROG.to_string(), |a| rawtext::from_os(&a))
}

fn main() -> ExitCode {
    // Arguments are bytes (a file name need not be UTF-8); they are
    // carried losslessly as text.
    let args: Vec<String> = std::env::args_os().skip(1).map(|a| rawtext::from_os(&a)).collect();
    let result = instar_cli::run(&argv0(), &args);
    // Output may go to a closed pipe; there is nothing better to do then.
    let _ = std::io::stdout().flush();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            instar_cli::err(&format!("{}\n", f.message));
            ExitCode::from(f.code)
        }
    }
}
