//! Shared by the integration tests: test certificates, building the C programs in c_tests/
//! against the library cargo just built, and running them.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod resp_server;
pub mod client_programs;
pub mod cluster;
pub mod memcached;
pub mod netns;
pub mod servers;
#[allow(unused_imports)] // each test binary uses its own subset
pub use resp_server::{build_c_example, Server};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where the library under test is: target/<profile>, where `make` put libconntls.a and
/// linked libconntls.so.0 (with libconntls.so beside it), or CONNTLS_LIB_DIR, a build of
/// the same sources made elsewhere (the OpenSSL matrix: against another OpenSSL).
/// `cargo test` does not link the shared library (the Makefile does, after cargo wrote the
/// static library and the rlib), so a libconntls.so.0 older than the rlib this test was
/// built with is refused rather than tested.
pub fn lib_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        if let Some(dir) = std::env::var_os("CONNTLS_LIB_DIR") {
            let dir = PathBuf::from(dir);
            for lib in ["libconntls.so.0", "libconntls.a"] {
                assert!(dir.join(lib).exists(), "CONNTLS_LIB_DIR={}: no {lib}", dir.display());
            }
            return dir;
        }
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf();
        let rlib = std::fs::read_dir(dir.join("deps"))
            .expect("deps dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("libconntls-") && e.file_name().to_string_lossy().ends_with(".rlib"))
            .filter_map(|e| mtime(&e.path()))
            .max();
        let linked = mtime(&dir.join("libconntls.so.0"));
        assert!(
            linked.is_some() && linked >= rlib && dir.join("libconntls.a").exists(),
            "libconntls.so.0 in {} is missing or older than the sources: run `make` first (`make test` does)",
            dir.display()
        );
        dir
    })
    .clone()
}

pub fn tmp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// The certificates from scripts/make-certs.sh, made once and shared by every test binary.
pub fn certs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tmp_dir().join("certs");
        // badtime.crt is the last file make-certs.sh writes; server-rsa4096.crt its newest
        // (a set made before it came is made again).
        if !dir.join("badtime.crt").exists() || !dir.join("server-rsa4096.crt").exists() {
            // Made aside and renamed, so binaries running at once never see half a set.
            let staging = tmp_dir().join(format!("certs.{}", std::process::id()));
            let status = Command::new(root().join("scripts/make-certs.sh")).arg(&staging).status().expect("run make-certs.sh");
            assert!(status.success(), "make-certs.sh failed");
            if dir.exists() && !dir.join("server-rsa4096.crt").exists() {
                std::fs::remove_dir_all(&dir).ok();
            }
            if std::fs::rename(&staging, &dir).is_err() {
                std::fs::remove_dir_all(&staging).ok();
            }
        }
        dir
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Against libconntls.so.
    Shared,
    /// Against libconntls.a and the libraries pkg-config --static names.
    Static,
    /// Against libconntls.so, the program built with AddressSanitizer and UBSan.
    Sanitized,
    /// Against libconntls.so, the program built with ThreadSanitizer (the C side).
    ThreadSanitized,
}

const CFLAGS: &[&str] = &["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-g", "-O1"];

/// Compiles c_tests/<name>.c linked `link` (and with `extra_libs`); returns its path.
pub fn build_c(name: &str, link: Link, extra_libs: &[&str]) -> PathBuf {
    build_program(&root().join("c_tests").join(format!("{name}.c")), link, extra_libs)
}

/// Compiles one C source file of the project; returns the program's path.
pub fn build_program(source: &Path, link: Link, extra_libs: &[&str]) -> PathBuf {
    let name = source.file_stem().and_then(|s| s.to_str()).expect("a source file name");
    let out = tmp_dir().join(format!("{name}-{link:?}").to_lowercase());
    // Built aside and renamed: tests building the same program at once never clash.
    let building = out.with_extension(format!("{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], ""));
    let mut cc = Command::new("cc");
    cc.args(CFLAGS)
        .arg("-I")
        .arg(root().join("include"))
        .arg("-I")
        .arg(root().join("c_tests"))
        .arg(source)
        .arg("-o")
        .arg(&building);
    match link {
        Link::Shared | Link::Sanitized | Link::ThreadSanitized => {
            if link == Link::Sanitized {
                cc.args(["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]);
            }
            if link == Link::ThreadSanitized {
                cc.arg("-fsanitize=thread");
            }
            let lib = lib_dir();
            cc.arg(format!("-L{}", lib.display()))
                .arg(format!("-Wl,-rpath,{}", lib.display()))
                .arg("-lconntls");
        }
        Link::Static => {
            cc.arg(lib_dir().join("libconntls.a")).args(["-lssl", "-lpthread", "-ldl", "-lm"]);
        }
    }
    cc.args(extra_libs).args(["-lcrypto", "-lpthread"]);
    let output = cc.output().expect("run cc");
    assert!(output.status.success(), "cc {name} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    std::fs::rename(&building, &out).expect("rename the built program");
    out
}

/// A new empty directory for one test run. On first use, the directories of test
/// programs that have exited are removed (an install test leaves 30 MB): what stays is
/// the running or last test program's.
pub fn scratch_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static CLEAN: std::sync::Once = std::sync::Once::new();
    CLEAN.call_once(remove_dead_scratch_dirs);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = tmp_dir().join(format!("run-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch dir");
    dir
}

fn remove_dead_scratch_dirs() {
    let Ok(entries) = std::fs::read_dir(tmp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix("run-").and_then(|rest| rest.split('-').next()).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// The environment the C tests read: where the certificates are, a scratch directory.
/// Without cargo's LD_LIBRARY_PATH (target/release), which would win over each program's
/// rpath: the program loads the library it was linked against (another build's, or an
/// installed one).
pub fn c_env(cmd: &mut Command) -> &mut Command {
    cmd.env_remove("LD_LIBRARY_PATH")
        .env("CONNTLS_CERTS", certs())
        .env("CONNTLS_TMP", scratch_dir())
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        .env("TSAN_OPTIONS", format!("halt_on_error=1 suppressions={}", root().join("tests/tsan.supp").display()))
}

/// Runs a built program to success, showing its output when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let output = c_env(cmd).output().expect("run test program");
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Builds and runs c_tests/<name>.c linked `link`.
pub fn run_c(name: &str, link: Link, args: &[&str]) -> Output {
    let exe = build_c(name, link, &[]);
    run_ok(Command::new(exe).args(args))
}

/// Runs c_tests/<name>.c under valgrind memcheck: zero errors and no definite or indirect
/// leaks, or the test fails.
pub fn run_c_valgrind(name: &str, args: &[&str]) -> Output {
    let exe = build_c(name, Link::Shared, &[]);
    let output = run_ok(
        Command::new("valgrind")
            .args([
                "--quiet",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect",
                "--show-leak-kinds=definite,indirect",
                "--error-exitcode=99",
            ])
            .arg(exe)
            .args(args),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("ERROR SUMMARY") || stderr.contains("ERROR SUMMARY: 0 errors"), "{stderr}");
    output
}

/// The four builds every plain C test runs in: against the .so, against the .a, under
/// ASan+UBSan, and under valgrind memcheck.
#[macro_export]
macro_rules! c_test_in_every_build {
    ($name:literal) => {
        #[test]
        fn shared_library() {
            run_c($name, Link::Shared, &[]);
        }

        #[test]
        fn static_library() {
            run_c($name, Link::Static, &[]);
        }

        #[test]
        fn asan_ubsan() {
            run_c($name, Link::Sanitized, &[]);
        }

        #[test]
        fn valgrind_memcheck() {
            run_c_valgrind($name, &[]);
        }
    };
}

/// The Python of target/py-venv with this tree's binding installed (`pip install
/// ./bindings/python[test]`: cffi, pytest and redis-py from PyPI, once), reinstalled on each
/// call so that it is this tree's package, not an older one. Its programs find the library
/// through CONNTLS_LIBRARY (lib_dir's libconntls.so.0).
pub fn python_with_binding() -> PathBuf {
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(out.status.success(), "{cmd:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    };
    let venv = root().join("target/py-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    }
    let pip = |args: &[&str]| run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]).args(args));
    pip(&[&format!("{}[test]", root().join("bindings/python").display())]);
    pip(&["--force-reinstall", "--no-deps", &root().join("bindings/python").display().to_string()]);
    python
}
