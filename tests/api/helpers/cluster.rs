//! A PostgreSQL cluster of the test's own: `initdb` in a temporary directory, started with
//! `pg_ctl` on a free port, with `scram-sha-256` for every connection (so passwords are really
//! checked, as the shared local server's trust authentication does not), and stopped when the
//! test drops it. For placement across servers and for faults (stopping a server under load).
//!
//! The tools come from `pg_config --bindir`, else `PATH`. Run as root, the cluster is made and
//! run as the `postgres` user (PostgreSQL refuses to run as root). Where the tools are missing,
//! [`Cluster::start`] says why and gives none, except under `SILO_REQUIRE_POSTGRES=1`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use tempfile::TempDir;

pub const ADMIN_PASSWORD: &str = "cluster-admin-password";

pub struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    pub port: u16,
}

fn tool_dir() -> Option<PathBuf> {
    let from_config = Command::new("pg_config").arg("--bindir").output().ok();
    if let Some(output) = from_config.filter(|o| o.status.success()) {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").is_file() {
            return Some(dir);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Cluster {
    /// A new cluster, started; `None` (with the reason printed) where PostgreSQL's tools are
    /// not installed.
    pub fn start() -> Option<Cluster> {
        let Some(bin) = tool_dir() else {
            assert!(
                std::env::var("SILO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PostgreSQL's initdb is required here but not installed"
            );
            eprintln!("skipped: no initdb (PostgreSQL's server tools) on this machine");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("silo-cluster")
            .tempdir()
            .expect("a temp dir");
        let cluster = Cluster {
            port: free_port(),
            dir,
            bin,
        };
        std::fs::write(cluster.path().join("password"), ADMIN_PASSWORD).unwrap();
        if is_root() {
            let chowned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(cluster.path())
                .status()
                .expect("chown runs");
            assert!(
                chowned.success(),
                "the cluster directory is given to postgres"
            );
        }
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--pwfile",
                &cluster.path().join("password").display().to_string(),
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.start_again();
        Some(cluster)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> String {
        self.path().join("data").display().to_string()
    }

    /// The admin role's URL.
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://postgres:{ADMIN_PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// One of PostgreSQL's tools, to run as the cluster's owner (`postgres` when we are root).
    fn tool(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        }
    }

    /// Runs one of PostgreSQL's tools as the cluster's owner; panics with its output on failure.
    fn run(&self, tool: &str, args: &[&str]) {
        let output = self
            .tool(tool)
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap_or_else(|e| panic!("{tool} runs: {e}"));
        assert!(
            output.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the (stopped) cluster on its port and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.path().display()
        );
        let log = self.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the cluster never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the cluster at once, as a crash would: clients see their connections drop.
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .tool("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
