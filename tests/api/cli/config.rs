//! Configuration: `--config` anywhere on the line, `SILO_CONFIG`, and bad values named by key.

use super::databases;
use crate::helpers::{list_dir, Cli};

#[tokio::test]
async fn the_config_flag_works_before_and_after_the_subcommand() {
    let cli = Cli::new();
    let config = cli.dir.path().join("silo.toml");
    std::fs::write(&config, cli.config_toml()).unwrap();
    let path = config.to_str().unwrap();

    cli.run_with(&["--config", path, "tenant", "create", "acme"], &[], None)
        .assert_code(0);
    let list = cli.run_with(&["tenant", "list", "--config", path], &[], None);
    list.assert_code(0);
    assert!(list.stdout.contains("acme"), "{list:?}");
    let show = cli.run_with(&["tenant", "show", "acme", "--config", path], &[], None);
    assert_eq!(show.json()["slug"], "acme");
    let by_env = cli.run_with(
        &["tenant", "show", "acme"],
        &[("SILO_CONFIG", path.into())],
        None,
    );
    assert_eq!(by_env.json()["slug"], "acme");

    // The file's directories were used, not the built-in `data` in the working directory.
    assert!(cli.data_dir().join("dev-master-key").is_file());
    if cli.registry_is_file() {
        assert!(cli.data_dir().join("control.db").is_file());
    }
    if crate::helpers::tenant_server_url().is_none() {
        assert_eq!(databases(&cli).len(), 1);
    }
    let database = show.json()["database"].as_str().unwrap().to_owned();
    assert!(cli.database(&database).exists().await, "{database}");
    assert!(
        list_dir(&cli.work_dir()).is_empty(),
        "{:?}",
        list_dir(&cli.work_dir())
    );

    let missing = cli.run_with(&["--config", "nowhere.toml", "tenant", "list"], &[], None);
    missing.assert_code(2);
    assert!(missing.stderr.contains("nowhere.toml"), "{missing:?}");
}

#[test]
fn a_bad_config_value_exits_2_naming_the_key() {
    let cli = Cli::new();
    let cases = [
        ("[http]\nlisten = \"nope\"\n", "http.listen"),
        ("[pool]\nidle_ttl_secs = 0\n", "pool.idle_ttl_secs"),
        (
            "[resolve]\nstrategies = [\"telepathy\"]\n",
            "resolve.strategies",
        ),
        ("[secrets]\nmaster_key = \"short\"\n", "secrets.master_key"),
        ("[pool]\nidle_ttl_secs = \"soon\"\n", "idle_ttl_secs"),
        ("[http]\nlisten_on = \"127.0.0.1:1\"\n", "listen_on"),
        ("[http\nlisten =", "bad.toml"),
        (
            "[http]\nrequest_timeout_secs = 2.7\n",
            "http.request_timeout_secs",
        ),
        ("[log]\nlevel = \"bogus\"\n", "log.level"),
        ("[log]\nlevel = \"\"\n", "log.level"),
        ("[admin]\ntoken = \"   \"\n", "admin.token"),
        ("[servers.eu]\nmax_connections = 8\n", "servers.eu.url"),
    ];
    for (text, key) in cases {
        let config = cli.dir.path().join("bad.toml");
        std::fs::write(&config, text).unwrap();
        let out = cli.run(&["--config", config.to_str().unwrap(), "tenant", "list"]);
        assert_eq!(out.code, 2, "{text:?}: {out:?}");
        assert!(
            out.stderr.contains(key),
            "{text:?} should name {key}: {out:?}"
        );
    }
    for (variable, value, key) in [
        ("SILO__HTTP__LISTEN", "nope", "http.listen"),
        (
            "SILO__HTTP__REQUEST_TIMEOUT_SECS",
            "1.5",
            "http.request_timeout_secs",
        ),
        ("SILO__LOG__LEVEL", "bogus", "log.level"),
        ("SILO__MIGRATIONS__ON_OPEN", "maybe", "migrations.on_open"),
    ] {
        let mut env = cli.env();
        env.push((variable, value.into()));
        let out = cli.run_with(&["tenant", "list"], &env, None);
        assert_eq!(out.code, 2, "{variable}={value}: {out:?}");
        assert!(out.stderr.contains(key), "{variable}={value}: {out:?}");
    }
}

#[test]
fn a_budget_for_local_beside_configured_servers_needs_its_url() {
    let cli = Cli::new();
    let config = cli.dir.path().join("eu.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[servers.eu]\nurl = \"sqlite://{}\"\n",
            cli.data_dir().display().to_string(),
            cli.tenants_dir().display()
        ),
    )
    .unwrap();
    let env = [("SILO__SERVERS__LOCAL__MAX_CONNECTIONS", "50".to_owned())];
    let out = cli.run_with(
        &["--config", config.to_str().unwrap(), "tenant", "list"],
        &env,
        None,
    );
    out.assert_code(2);
    assert!(out.stderr.contains("servers.local.url"), "{out:?}");
}

#[test]
fn a_variable_that_is_not_utf8_does_not_stop_silo() {
    use std::os::unix::ffi::OsStrExt;
    let cli = Cli::new();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_silo"));
    command
        .args(["tenant", "list"])
        .current_dir(cli.work_dir())
        .env_remove("SILO_CONFIG")
        .envs(cli.env())
        .env("SOMEONE_ELSES", std::ffi::OsStr::from_bytes(b"caf\xe9"));
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn environment_values_of_the_right_kind_are_accepted() {
    let cli = Cli::new();
    let mut env = cli.env();
    env.extend([
        ("SILO__HTTP__REQUEST_TIMEOUT_SECS", "12".to_owned()),
        ("SILO__MIGRATIONS__ON_OPEN", "false".to_owned()),
        (
            "SILO__RESOLVE__STRATEGIES",
            "subdomain, header,path".to_owned(),
        ),
        ("SILO__RESOLVE__RESERVED_SLUGS", "".to_owned()),
        ("SILO__LOG__LEVEL", "info,silo=debug".to_owned()),
        // Looks like a number; it is a token, used as written.
        ("SILO__ADMIN__TOKEN", "007".to_owned()),
    ]);
    cli.run_with(&["tenant", "list"], &env, None).assert_code(0);
    // A list key with an unknown item is still refused.
    env.push((
        "SILO__RESOLVE__STRATEGIES",
        "subdomain,telepathy".to_owned(),
    ));
    let out = cli.run_with(&["tenant", "list"], &env, None);
    out.assert_code(2);
    assert!(out.stderr.contains("resolve.strategies"), "{out:?}");
}

#[test]
fn the_default_server_keeps_its_directory_when_only_its_budget_is_set() {
    let cli = Cli::new();
    // No config file: the built-in defaults, with only the budget of `local` changed.
    let env = vec![
        ("SILO__DATA_DIR", cli.data_dir().display().to_string()),
        (
            "SILO__TEMPLATES_DIR",
            crate::helpers::templates_dir().display().to_string(),
        ),
        ("SILO__SERVERS__LOCAL__MAX_CONNECTIONS", "8".into()),
        ("SILO__AUTH__ARGON2_MEMORY_KIB", "1024".into()),
        ("SILO__AUTH__ARGON2_ITERATIONS", "1".into()),
    ];
    let created = cli.run_with(&["tenant", "create", "acme"], &env, None);
    created.assert_code(0);
    let database = created.json()["database"].as_str().unwrap().to_owned();
    // `sqlite://data/tenants`, relative to the working directory.
    assert!(
        cli.work_dir()
            .join("data")
            .join("tenants")
            .join(&database)
            .is_file(),
        "{:?}",
        list_dir(&cli.work_dir())
    );
}
