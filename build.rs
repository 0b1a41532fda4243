//! Builds the embedded default configuration from `feeds/*.toml`, joined in file-name order.
use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=feeds");
    let mut files: Vec<_> = fs::read_dir("feeds")
        .expect("feeds/ directory")
        .map(|e| e.expect("feeds entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut out = String::new();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        out.push_str(&format!(
            "# ---- feeds/{}\n",
            f.file_name().unwrap().to_string_lossy()
        ));
        out.push_str(&fs::read_to_string(f).expect("read feeds file"));
        out.push('\n');
    }
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("default-config.toml");
    fs::write(dest, out).expect("write default config");
}
