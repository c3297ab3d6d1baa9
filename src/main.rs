use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tribute_assistant::app::cli::Cli::parse();
    tribute_assistant::http::tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("failed to start the tokio runtime");
    match runtime.block_on(tribute_assistant::app::cli::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
