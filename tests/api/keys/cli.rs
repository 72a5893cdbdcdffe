//! `silo tenant rotate-keys` and `silo keys rotate | status`, run as the real binary.

use super::key_id;
use crate::helpers::Cli;

const KEY_A: &str = "cli-master-key-a-0123456789abcdef-01234567";
const KEY_B: &str = "cli-master-key-b-0123456789abcdef-01234567";

/// The CLI's environment with master key `key` and `previous` keys.
fn env(cli: &Cli, key: &str, previous: &[&str]) -> Vec<(&'static str, String)> {
    let mut env = cli.env();
    env.push(("SILO__SECRETS__MASTER_KEY", key.into()));
    if !previous.is_empty() {
        env.push(("SILO__SECRETS__PREVIOUS_MASTER_KEYS", previous.join(",")));
    }
    env
}

#[test]
fn tenant_rotate_keys_prints_the_move_and_refusals_exit_1_or_2() {
    let cli = Cli::new();
    let on_a = env(&cli, KEY_A, &[]);
    cli.run_with(&["tenant", "create", "acme"], &on_a, None)
        .assert_code(0);
    let out = cli.run_with(&["tenant", "rotate-keys", "acme"], &on_a, None);
    out.assert_code(0);
    let moved = out.json();
    assert_eq!(moved["from"]["version"], 1);
    assert_eq!(moved["to"]["version"], 2);
    assert_eq!(moved["to"]["key"], key_id(KEY_A));

    let unknown = cli.run_with(&["tenant", "rotate-keys", "nobody"], &on_a, None);
    unknown.assert_code(1);
    assert!(unknown.stderr.contains("not found"), "{unknown:?}");
    for bad in [
        &["tenant", "rotate-keys", "Bad_Slug"][..],
        &["tenant", "rotate-keys"],
        &["keys", "rotate", "--concurrency", "0"],
        &["keys", "rotate", "--concurrency", "65"],
        &["keys", "frobnicate"],
    ] {
        let out = cli.run_with(bad, &on_a, None);
        assert_eq!(out.code, 2, "silo {}: {out:?}", bad.join(" "));
        assert!(!out.stderr.trim().is_empty());
    }
    // Nothing moved by the refusals.
    let status = cli.run_with(&["keys", "status"], &on_a, None);
    status.assert_code(0);
    assert_eq!(status.json()["tenants_by_key"][key_id(KEY_A)], 1);
    let again = cli.run_with(&["tenant", "rotate-keys", "acme"], &on_a, None);
    assert_eq!(again.json()["to"]["version"], 3, "{again:?}");
}

#[test]
fn keys_rotate_moves_the_fleet_onto_the_new_master_key() {
    let cli = Cli::new();
    let on_a = env(&cli, KEY_A, &[]);
    for slug in ["acme", "globex", "initech"] {
        cli.run_with(&["tenant", "create", slug], &on_a, None)
            .assert_code(0);
    }
    let rolling = env(&cli, KEY_B, &[KEY_A]);
    let out = cli.run_with(&["keys", "rotate", "--concurrency", "2"], &rolling, None);
    out.assert_code(0);
    let report = out.json();
    assert_eq!(report["tenants"], 3);
    assert_eq!(report["rotated"], 3);
    assert_eq!(report["remaining"], 0);
    assert!(
        out.stderr.contains("3 rotated"),
        "a summary line: {}",
        out.stderr
    );
    let on_b = env(&cli, KEY_B, &[]);
    let status = cli.run_with(&["keys", "status"], &on_b, None);
    status.assert_code(0);
    let status = status.json();
    assert_eq!(
        status["tenants_by_key"],
        serde_json::json!({ key_id(KEY_B): 3 })
    );
    assert_eq!(status["tenants_on_other_keys"], 0);
    // Resumed or repeated, the run finds nothing left.
    let again = cli.run_with(&["keys", "rotate"], &on_b, None);
    again.assert_code(0);
    assert_eq!(again.json()["tenants"], 0);
    // And tenants are served on B alone: a rotation there works as well.
    cli.run_with(&["tenant", "rotate-keys", "globex"], &on_b, None)
        .assert_code(0);
}

#[test]
fn a_short_previous_key_or_one_without_a_master_key_exits_2_naming_the_key() {
    let cli = Cli::new();
    let mut short = env(&cli, KEY_A, &[]);
    short.push(("SILO__SECRETS__PREVIOUS_MASTER_KEYS", "too-short".into()));
    let out = cli.run_with(&["keys", "status"], &short, None);
    out.assert_code(2);
    assert!(
        out.stderr.contains("secrets.previous_master_keys"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains("too-short"),
        "the key is never repeated: {out:?}"
    );

    let mut alone = cli.env();
    alone.push(("SILO__SECRETS__PREVIOUS_MASTER_KEYS", KEY_A.into()));
    let out = cli.run_with(&["keys", "status"], &alone, None);
    out.assert_code(2);
    assert!(out.stderr.contains("secrets.master_key"), "{out:?}");
}
