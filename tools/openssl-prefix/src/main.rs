//! `openssl-prefix LINE DIR`: builds OpenSSL LINE (3.5 or 4.0) from the openssl-src crate,
//! with that crate's own build API, into DIR, and writes the prefix (DIR/install, with
//! include/ and lib/) for OPENSSL_DIR into DIR/built, printing it too. Read DIR/built,
//! not stdout: openssl-src and OpenSSL's configure print there while building. A
//! finished build is kept: run again, it only prints the prefix. For the OpenSSL matrix
//! of `make test` (make matrix-line).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn build(line: &str, dir: &Path) -> Result<(String, PathBuf), String> {
    // openssl-src reads what a build script would get from cargo.
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let jobs = std::thread::available_parallelism().map_or(2, usize::from);
    for (key, value) in
        [("TARGET", target.as_str()), ("HOST", target.as_str()), ("OPT_LEVEL", "2"), ("DEBUG", "false"), ("CARGO_MAKEFLAGS", &format!("-j{jobs}"))]
    {
        std::env::set_var(key, value);
    }
    let (version, artifacts_include) = match line {
        "3.5" => (openssl_src_3::version(), openssl_src_3::Build::new().out_dir(dir).try_build()?.include_dir().to_path_buf()),
        "4.0" => (openssl_src_4::version(), openssl_src_4::Build::new().out_dir(dir).try_build()?.include_dir().to_path_buf()),
        other => return Err(format!("unknown OpenSSL line '{other}' (3.5 or 4.0)")),
    };
    let prefix = artifacts_include.parent().ok_or("no install prefix")?.to_path_buf();
    Ok((version.to_string(), prefix))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, line, dir] = args.as_slice() else {
        eprintln!("usage: openssl-prefix 3.5|4.0 DIR");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    let stamp = dir.join("built");
    if let Ok(prefix) = std::fs::read_to_string(&stamp) {
        println!("{}", prefix.trim());
        return ExitCode::SUCCESS;
    }
    match build(line, &dir) {
        Ok((version, prefix)) => {
            eprintln!("built OpenSSL {version} into {}", prefix.display());
            std::fs::write(&stamp, format!("{}\n", prefix.display())).expect("write the stamp");
            println!("{}", prefix.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("openssl-prefix: {e}");
            ExitCode::FAILURE
        }
    }
}
