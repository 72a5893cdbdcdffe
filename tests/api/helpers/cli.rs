//! The real `silo` binary, run in a temporary working directory of its own.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use serde_json::Value;
use tempfile::TempDir;

use super::{list_dir, test_registry_blocking, TestDatabase};

/// A temporary directory for `silo` runs: `data/` for the registry, `tenants/` for databases,
/// and `work/`, the working directory (so the built-in default `data` is `work/data`, elsewhere).
pub struct Cli {
    pub dir: TempDir,
    /// The registry's own PostgreSQL database under `SILO_TEST_REGISTRY=postgres`.
    registry: Option<TestDatabase>,
}

/// How one run ended.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout as JSON; panics with both streams when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        self
    }
}

impl Cli {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("work")).unwrap();
        Self {
            dir,
            registry: test_registry_blocking(),
        }
    }

    /// The working directory of every run.
    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The registry every run uses: `data/control.db`, or its own PostgreSQL database under
    /// `SILO_TEST_REGISTRY=postgres`.
    pub fn registry_url(&self) -> String {
        match &self.registry {
            Some(registry) => registry.url.clone(),
            None => format!("sqlite://{}", self.data_dir().join("control.db").display()),
        }
    }

    /// Whether the registry is the SQLite file `data/control.db`.
    pub fn registry_is_file(&self) -> bool {
        self.registry.is_none()
    }

    pub fn tenants_dir(&self) -> PathBuf {
        self.dir.path().join("tenants")
    }

    /// Tenant database `name` (a registry row's `database`), on either backend.
    pub fn database(&self, name: &str) -> super::TenantDatabase {
        super::TenantDatabase::at(&self.tenants_dir(), name)
    }

    /// `servers.local`: this directory's `tenants`, or this run's PostgreSQL tenant server.
    pub fn server_url(&self) -> String {
        super::tenant_server_url()
            .unwrap_or_else(|| format!("sqlite://{}", self.tenants_dir().display()))
    }

    /// `SILO__` variables pointing everything at this directory, with cheap argon2.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("SILO__DATA_DIR", self.data_dir().display().to_string()),
            ("SILO__TEMPLATES_DIR", templates_dir().display().to_string()),
            ("SILO__SERVERS__LOCAL__URL", self.server_url()),
            ("SILO__AUTH__ARGON2_MEMORY_KIB", "1024".into()),
            ("SILO__AUTH__ARGON2_ITERATIONS", "1".into()),
        ];
        if let Some(registry) = &self.registry {
            env.push(("SILO__REGISTRY__URL", registry.url.clone()));
        }
        env
    }

    /// The same settings as [`Cli::env`], as a config file.
    pub fn config_toml(&self) -> String {
        let registry = match &self.registry {
            Some(registry) => format!("\n[registry]\nurl = {:?}\n", registry.url),
            None => String::new(),
        };
        let main = format!(
            "data_dir = {:?}\ntemplates_dir = {:?}\n\n[servers.local]\nurl = {:?}\n\n[auth]\nargon2_memory_kib = 1024\nargon2_iterations = 1\n",
            self.data_dir().display().to_string(),
            templates_dir().display().to_string(),
            self.server_url(),
        );
        main + &registry
    }

    /// `silo <args>` with the `SILO__` variables of [`Cli::env`].
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &self.env(), None)
    }

    /// `silo <args>` with `stdin` piped in.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(args, &self.env(), Some(stdin))
    }

    /// `silo <args>` with only `env` set (no `SILO__` defaults), for config-file tests.
    pub fn run_with(&self, args: &[&str], env: &[(&str, String)], stdin: Option<&str>) -> Output {
        let mut child = self
            .command(args, env)
            .spawn()
            .expect("the silo binary runs");
        let mut pipe = child.stdin.take().unwrap();
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).unwrap();
        }
        drop(pipe);
        let output = child.wait_with_output().unwrap();
        Output {
            code: output.status.code().expect("exited, not killed"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `silo <args>` ready to spawn, in the working directory, with only `env` set and every
    /// stream piped: for runs a test watches, kills or runs side by side.
    pub fn command(&self, args: &[&str], env: &[(&str, String)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_silo"));
        command
            .args(args)
            .current_dir(self.work_dir())
            .env_remove("SILO_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SILO__")) {
            command.env_remove(key);
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Files in the tenants directory, sorted (empty when it does not exist).
    pub fn tenant_files(&self) -> Vec<String> {
        list_dir(&self.tenants_dir())
    }
}

pub fn templates_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tenant_templates")
}
