//! Bad webhook settings stop silo before it starts, naming the key, never a URL's password.

use crate::helpers::{Cli, WEBHOOK_SECRET};

#[test]
fn bad_webhook_settings_exit_2_naming_the_key() {
    let cli = Cli::new();
    let cases = [
        (
            "[webhooks]\nurls = [\"http://127.0.0.1:9/hooks\"]\n",
            "webhooks.secret",
            "required",
        ),
        (
            "[webhooks]\nurls = [\"ftp://u:hunter2@example.com/\"]\nsecret = \"0123456789abcdef\"\n",
            "webhooks.urls[0]",
            "http",
        ),
        (
            "[webhooks]\nurls = [\"hooks.example.com\"]\nsecret = \"0123456789abcdef\"\n",
            "webhooks.urls[0]",
            "not a URL",
        ),
        (
            "[webhooks]\nurls = [\"http://a.test/\", \"http://a.test/\"]\nsecret = \"0123456789abcdef\"\n",
            "webhooks.urls[1]",
            "twice",
        ),
        ("[webhooks]\nsecret = \"short\"\n", "webhooks.secret", "16"),
        ("[webhooks]\ntimeout_ms = 0\n", "webhooks.timeout_ms", "greater"),
        (
            "[webhooks]\nretry_initial_ms = 5000\nretry_max_ms = 1000\n",
            "webhooks.retry_max_ms",
            "retry_initial_ms",
        ),
        ("[webhooks]\nurl = \"http://a.test/\"\n", "url", "unknown"),
    ];
    for (text, key, words) in cases {
        let config = cli.dir.path().join("bad.toml");
        std::fs::write(&config, text).unwrap();
        for command in [&["serve"][..], &["tenant", "list"]] {
            let mut args = vec!["--config", config.to_str().unwrap()];
            args.extend_from_slice(command);
            let out = cli.run(&args);
            assert_eq!(out.code, 2, "{text:?}: {out:?}");
            assert!(
                out.stderr.contains(key) && out.stderr.contains(words),
                "{text:?} should name {key} ({words}): {out:?}"
            );
            assert!(!out.stderr.contains("hunter2"), "{out:?}");
        }
    }
    // From the environment, as in production: the list split at commas, the secret as written.
    let mut env = cli.env();
    env.push((
        "SILO__WEBHOOKS__URLS",
        "http://a.test/,gopher://b.test/".into(),
    ));
    env.push(("SILO__WEBHOOKS__SECRET", WEBHOOK_SECRET.into()));
    let out = cli.run_with(&["tenant", "list"], &env, None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("webhooks.urls[1]"), "{out:?}");
    let mut env = cli.env();
    env.push((
        "SILO__WEBHOOKS__URLS",
        "http://a.test/, https://b.test/x".into(),
    ));
    env.push(("SILO__WEBHOOKS__SECRET", WEBHOOK_SECRET.into()));
    cli.run_with(&["tenant", "list"], &env, None).assert_code(0);
}
