//! cirrus-init's entry point; everything lives in the library (`cirrus_init::cli`).

fn main() -> std::process::ExitCode {
    cirrus_init::cli::main()
}
