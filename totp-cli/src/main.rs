//! `totp-enroll`: see the library crate, `totp_cli`.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(totp_cli::run(std::env::args_os()))
}
