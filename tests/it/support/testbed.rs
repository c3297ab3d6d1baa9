//! The testbed, in process (its arguments with the defaults tests use) or as
//! the real binary's `testbed` command (started, its JSON ready line read).

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tribute_testbed::serve::TestbedArgs;

use super::wait::SETTLE;

/// An in-process testbed on free loopback ports, with the reference
/// backend, no faults, seed 1.
pub fn args(dir: &Path) -> TestbedArgs {
    TestbedArgs {
        dir: dir.to_path_buf(),
        mtproto: "127.0.0.1:0".parse().unwrap(),
        control: "127.0.0.1:0".parse().unwrap(),
        backend: "reference".into(),
        faults: "none".parse().unwrap(),
        seed: 1,
        require_v2: false,
        rehearse_login: false,
    }
}

/// A running `tribute-assistant testbed`, its ready line, and the rest of
/// its stdout.
pub struct TestbedProcess {
    pub child: Child,
    pub lines: Lines<BufReader<ChildStdout>>,
    pub ready: serde_json::Value,
}

impl TestbedProcess {
    /// `testbed <options> --dir <dir>`, logging warnings only, its stderr
    /// as given; returns once it printed its ready line.
    pub async fn start(options: &[&str], dir: &Path, env: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"))
            .args(["--log", "warn", "testbed"])
            .args(options)
            .arg("--dir")
            .arg(dir)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = next_line(&mut lines).await;
        let ready = serde_json::from_str(&line).unwrap_or_else(|e| panic!("one JSON line when ready: {line:?}: {e}"));
        Self { child, lines, ready }
    }

    /// A string field of the ready line.
    pub fn field(&self, key: &str) -> String {
        self.ready[key].as_str().unwrap_or_else(|| panic!("{key} in {}", self.ready)).to_owned()
    }
}

/// The next line a child printed, within the settle bound.
pub async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(SETTLE, lines.next_line()).await.expect("a line in time").unwrap().expect("a line")
}
