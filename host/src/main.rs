//! `imo`: the command line over the imo library.

fn main() -> std::process::ExitCode {
    imo::cli::main()
}
