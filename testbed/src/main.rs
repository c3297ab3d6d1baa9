//! The one `tribute-assistant` binary: every command, the daemon's and
//! the stand-in world's ([`tribute_testbed::cli`]).

use clap::Parser;

fn main() -> std::process::ExitCode {
    tribute_assistant::runtime::memory::one_malloc_arena();
    let cli = tribute_testbed::cli::Cli::parse();
    tribute_assistant::http::tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("failed to start the tokio runtime");
    match runtime.block_on(tribute_testbed::cli::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
