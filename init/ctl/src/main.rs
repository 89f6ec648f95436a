//! cirrusctl: see the library.
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    cirrusctl::run(&args)
}
