//! Every configuration the project ships parses and validates: the embedded default and deploy/*.toml.

use iocfeed::config::{Config, DEFAULT_CONFIG};

#[test]
fn shipped_configs_parse() {
    Config::parse("embedded default", DEFAULT_CONFIG).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let loaded = Config::load(Some(&p)).unwrap_or_else(|e| panic!("{e}"));
            assert!(!loaded.config.lists.is_empty(), "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 1, "no example config in deploy/");
}
