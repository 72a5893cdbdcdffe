//! Embeds `migrations/control/` and `migrations/tenant/` into the binary, so a deployed silo
//! carries the exact schema it was built with and needs no migrations folder at run time.

use std::{env, fmt::Write, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let mut out = String::new();
    for (set, dir) in [
        ("CONTROL", "migrations/control"),
        ("TENANT", "migrations/tenant"),
    ] {
        let mut files: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
            .map(|entry| entry.expect("readable directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
            .collect();
        files.sort();
        writeln!(out, "pub const {set}: &[(i64, &str, &str)] = &[").unwrap();
        for path in files {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let (version, description) = stem
                .split_once('_')
                .unwrap_or_else(|| panic!("{stem}: expected <version>_<description>.sql"));
            let version: i64 = version
                .parse()
                .unwrap_or_else(|_| panic!("{stem}: the version must be a number"));
            // Resolved when the crate compiles, not here: the generated file may outlive this
            // checkout (a target directory shared by two of them keeps it).
            // `path` is relative to the crate's root, where build scripts run.
            writeln!(
                out,
                "    ({version}, {description:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {:?}))),",
                format!("/{}", path.display())
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("migrations.rs"),
        out,
    )
    .unwrap();
}
