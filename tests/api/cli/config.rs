//! Configuration: `--config` anywhere on the line, `SILO_CONFIG`, and bad values named by key.

use super::databases;
use crate::helpers::{list_dir, Cli};

#[test]
fn the_config_flag_works_before_and_after_the_subcommand() {
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
    assert!(cli.data_dir().join("control.db").is_file());
    assert_eq!(databases(&cli).len(), 1);
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
        ("[http\nlisten =", "config"),
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
    let mut env = cli.env();
    env.push(("SILO__HTTP__LISTEN", "nope".into()));
    let out = cli.run_with(&["tenant", "list"], &env, None);
    out.assert_code(2);
    assert!(out.stderr.contains("http.listen"), "{out:?}");
}
