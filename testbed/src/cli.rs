//! The `tribute-assistant` command line: the daemon's commands (the
//! library's `app::cli`) and the stand-in world's beside them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tribute_assistant::app::cli::{self as daemon_cli, Globals};

/// Automates Tribute "Custom Product Order" messages on a Telegram user
/// account: parse the order, activate it on your backend (HMAC-signed),
/// reply in the Tribute chat with the payment number and press "Send".
/// Orders it cannot finish go to a moderator chat with their raw text.
#[derive(Debug, Parser)]
#[command(name = "tribute-assistant", version, about = daemon_cli::ABOUT, long_about = None, propagate_version = true, next_line_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

/// Every command, in the order `--help` lists them: `demo` first (the
/// README's first command), then the daemon's, then the proofs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole order flow on the built-in Telegram simulator and a
    /// reference backend, on loopback and in a temp dir, and narrate it.
    #[cfg(feature = "world")]
    Demo(crate::demo::DemoArgs),
    #[command(flatten)]
    Daemon(daemon_cli::Command),
    /// Run the real daemon for simulated days against the Telegram simulator
    /// (with seeded faults), the reference backend and a fresh store, on a
    /// paused clock; check the invariants; exit 1 if any is violated.
    /// Docs: docs/simulate.md.
    #[cfg(feature = "world")]
    Simulate(crate::simulate::SimulateArgs),
    /// Serve the stand-in world for the real daemon: the simulated Telegram
    /// (with the Tribute bot) over MTProto, the reference backend or yours,
    /// and a control API; writes DIR/config.toml so that
    /// `tribute-assistant --config DIR/config.toml run` runs against it.
    /// Prints one JSON line with the addresses when ready; runs until
    /// SIGTERM/SIGINT. Docs: docs/staging.md.
    #[cfg(feature = "world")]
    Testbed(crate::serve::TestbedArgs),
    /// Crash-only proof: the testbed, the real daemon (`run`) as a child
    /// process, orders posted, and the daemon killed with SIGKILL at chosen
    /// moments (mid backend call, between the Tribute reply and the Send
    /// press, in a customer dialogue) and restarted; checks nothing was
    /// lost or doubled; exits 1 otherwise. Docs: docs/staging.md.
    #[cfg(feature = "world")]
    Chaos(crate::chaos::ChaosArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let default_filter = match &cli.command {
        #[cfg(feature = "world")]
        Command::Demo(_) | Command::Simulate(_) | Command::Chaos(_) => "error",
        Command::Daemon(command) => command.default_log_filter(),
        #[cfg(feature = "world")]
        Command::Testbed(_) => "info",
    };
    cli.globals.init_telemetry(default_filter);
    match cli.command {
        #[cfg(feature = "world")]
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Daemon(command) => daemon_cli::run(command, cli.globals.config.as_deref()).await,
        #[cfg(feature = "world")]
        Command::Simulate(args) => crate::simulate::run(args).await,
        #[cfg(feature = "world")]
        Command::Testbed(args) => crate::serve::run(args).await,
        #[cfg(feature = "world")]
        Command::Chaos(args) => crate::chaos::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `--help` lists every command, the daemon's flattened in between.
    #[cfg(feature = "world")]
    #[test]
    fn help_lists_every_command_in_order() {
        let names: Vec<String> = Cli::command().get_subcommands().map(|c| c.get_name().to_string()).collect();
        assert_eq!(
            names,
            [
                "demo", "order", "orders", "login", "init", "chats", "run", "ask", "check", "kb", "export", "report",
                "forget", "simulate", "testbed", "chaos"
            ]
        );
    }

    /// Built without the stand-in world, the binary has the daemon's
    /// commands only (`--no-default-features --features edge,qdrant`).
    #[cfg(not(feature = "world"))]
    #[test]
    fn without_the_world_only_the_daemons_commands_are_listed() {
        let names: Vec<String> = Cli::command().get_subcommands().map(|c| c.get_name().to_string()).collect();
        assert_eq!(
            names,
            ["order", "orders", "login", "init", "chats", "run", "ask", "check", "kb", "export", "report", "forget"]
        );
    }
}
