//! The Debian packages: from a copy of the tree, vendored as a release would be
//! (scripts/vendor.sh), `dpkg-buildpackage -us -uc -b -d` builds libconntls0,
//! libconntls-dev and libconntls0-dbgsym offline; lintian finds no error or warning; the
//! packages install, a C program builds against them with pkg-config and runs; they are
//! purged again. While they are installed, Debian 12's redis source package is rebuilt
//! on conntls the way a distribution would (contrib/redis/debian-package.sh) and its
//! redis-server, unpacked with dpkg -x, is run under the "bad length" trigger. Needs root and debhelper, lintian and dpkg-dev (`.ci/run` installs
//! them); skipped, loudly, where they are missing.
mod common;
use common::*;

use common::servers::{free_port, run_peer, tls_server_args, ServerProcess, BAD_LENGTH_TRIGGER};
use std::path::Path;
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// Purges the packages when the test ends, whichever way.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "libconntls-dev", "libconntls0"]).output();
    }
}

#[test]
fn builds_installs_and_links() {
    let missing: Vec<&str> = ["dpkg-buildpackage", "dh", "lintian", "dpkg"].into_iter().filter(|t| !have(t)).collect();
    let root_user = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    if !missing.is_empty() || !root_user {
        println!("SKIPPED builds_installs_and_links: needs root and {missing:?} (debhelper, lintian, dpkg-dev)");
        return;
    }
    let version = env!("CARGO_PKG_VERSION");
    let scratch = scratch_dir();
    let tree = scratch.join(format!("conntls-{version}"));
    std::fs::create_dir_all(&tree).unwrap();
    run(Command::new("bash")
        .arg("-c")
        .arg("git ls-files -z -co --exclude-standard | tar --null -cf - -T - | tar -xf - -C \"$0\"")
        .arg(&tree)
        .current_dir(root()));
    println!("{}", run(Command::new(tree.join("scripts/vendor.sh")).current_dir(&tree)).lines().last().unwrap_or(""));
    // -d: the Rust toolchain (>= 1.80) comes from rustup here, not from Debian 12's rustc
    // 1.63 (debian/README.source). make test's RUSTFLAGS are not the package's.
    let build = Command::new("dpkg-buildpackage")
        .args(["-us", "-uc", "-b", "-d"])
        .current_dir(&tree)
        .env_remove("RUSTFLAGS")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run dpkg-buildpackage");
    let log = String::from_utf8_lossy(&build.stdout).into_owned() + &String::from_utf8_lossy(&build.stderr);
    assert!(build.status.success(), "dpkg-buildpackage failed:\n{log}");
    let deb = |name: &str| scratch.join(format!("{name}_{version}-1_amd64.deb"));
    for package in ["libconntls0", "libconntls-dev", "libconntls0-dbgsym"] {
        assert!(deb(package).exists(), "{} was not built", deb(package).display());
    }

    let changes = scratch.join(format!("conntls_{version}-1_amd64.changes"));
    let lint = Command::new("lintian").args(["--fail-on", "error,warning", "--info"]).arg(&changes).output().unwrap();
    let report = String::from_utf8_lossy(&lint.stdout).into_owned();
    println!("lintian:\n{report}");
    assert!(lint.status.success(), "lintian reports errors or warnings:\n{report}");
    assert!(!report.lines().any(|l| l.starts_with("E: ") || l.starts_with("W: ")), "{report}");

    let _installed = Installed;
    run(Command::new("dpkg").arg("-i").arg(deb("libconntls0")).arg(deb("libconntls-dev")));
    // A copy that `make install` put under /usr/local would shadow the packaged one at
    // every step (pkg-config and cc search /usr/local first, ld.so.conf lists /usr/local/lib
    // first), so each step names the packaged directories: the packaged conntls.pc,
    // testutil.h's "conntls.h" from /usr/include, -lconntls and the loader from multiarch.
    let multiarch = "/usr/lib/x86_64-linux-gnu";
    let installed = Path::new(multiarch).join("libconntls.so.0");
    assert!(run(Command::new("objdump").arg("-T").arg(&installed)).contains(" CONNTLS_0 "), "installed library is not versioned");
    let packaged_pc = |args: &[&str]| {
        run(Command::new("pkg-config")
            .args(args)
            .env_remove("PKG_CONFIG_PATH")
            .env("PKG_CONFIG_LIBDIR", format!("{multiarch}/pkgconfig:/usr/lib/pkgconfig:/usr/share/pkgconfig")))
    };
    assert_eq!(packaged_pc(&["--variable=libdir", "conntls"]).trim(), multiarch);
    let flags = packaged_pc(&["--cflags", "--libs", "conntls"]);
    let exe = scratch.join("session-packaged");
    run(Command::new("cc")
        .args(["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-iquote"])
        .arg(root().join("c_tests"))
        .args(["-iquote", "/usr/include"])
        .arg(root().join("c_tests/session.c"))
        .arg(format!("-L{multiarch}"))
        .args(flags.split_whitespace())
        .args(["-lcrypto", "-o"])
        .arg(&exe));
    let linked = run(Command::new("ldd").arg(&exe).env("LD_LIBRARY_PATH", multiarch));
    // The packaged library (/lib is /usr/lib on Debian 12).
    let resolved = linked.lines().find_map(|l| l.trim().strip_prefix("libconntls.so.0 => ")).and_then(|l| l.split_whitespace().next());
    let canonical = |p: &str| std::fs::canonicalize(p).ok();
    assert!(
        resolved.is_some_and(|p| canonical(p) == canonical(&format!("{multiarch}/libconntls.so.0"))),
        "the packaged redis-server does not load the packaged libconntls:\n{linked}"
    );
    run_ok(Command::new(&exe).env("LD_LIBRARY_PATH", multiarch));
    debian_redis_on_the_packaged_conntls(&scratch, multiarch);
    drop(_installed);
    assert!(!installed.exists(), "the packages were not purged");
    std::fs::remove_dir_all(&scratch).ok();
}

/// Debian 12's redis (fetched by package name), with contrib/redis/debian-package.sh's
/// patch and Build-Depends: libconntls-dev, built by dpkg-buildpackage against the
/// installed libconntls-dev (the build dependencies are checked: no -d). Its redis-server
/// links libconntls.so.0 and drops no connection under the trigger that makes Debian's
/// own drop them all (tests/redis.rs).
fn debian_redis_on_the_packaged_conntls(scratch: &Path, multiarch: &str) {
    let src = scratch.join("redis-src");
    run(Command::new(root().join("scripts/debian-source.sh")).args(["redis", "5:7.0.15-1~deb12u10"]).arg(&src));
    let tree = src.join("redis-7.0.15");
    run(Command::new(root().join("contrib/redis/debian-package.sh")).arg(&tree));
    let build = Command::new("dpkg-buildpackage")
        .args(["-us", "-uc", "-b"])
        .current_dir(&tree)
        .env("DEB_BUILD_OPTIONS", "nocheck parallel=2")
        .env("DEB_BUILD_PROFILES", "nocheck")
        // The packaged conntls.pc, not one a `make install` may have left in /usr/local.
        .env_remove("PKG_CONFIG_PATH")
        .env("PKG_CONFIG_LIBDIR", format!("{multiarch}/pkgconfig:/usr/lib/pkgconfig:/usr/share/pkgconfig"))
        .env_remove("RUSTFLAGS")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run dpkg-buildpackage");
    let log = String::from_utf8_lossy(&build.stdout).into_owned() + &String::from_utf8_lossy(&build.stderr);
    assert!(build.status.success(), "dpkg-buildpackage of redis on conntls failed:\n{log}");
    // redis-server is a link to redis-check-rdb, which redis-tools carries.
    let unpacked = scratch.join("redis-debs");
    for package in ["redis-server", "redis-tools"] {
        let deb = src.join(format!("{package}_7.0.15-1~deb12u10+conntls1_amd64.deb"));
        assert!(deb.exists(), "{} was not built:\n{log}", deb.display());
        run(Command::new("dpkg").arg("-x").arg(&deb).arg(&unpacked));
    }
    let server = unpacked.join("usr/bin/redis-server");
    let dynamic = run(Command::new("readelf").arg("-d").arg(&server));
    assert!(dynamic.contains("[libconntls.so.0]"), "the packaged redis-server does not link libconntls:\n{dynamic}");
    let linked = run(Command::new("ldd").arg(&server).env_remove("LD_LIBRARY_PATH"));
    // The packaged library (/lib is /usr/lib on Debian 12).
    let resolved = linked.lines().find_map(|l| l.trim().strip_prefix("libconntls.so.0 => ")).and_then(|l| l.split_whitespace().next());
    let canonical = |p: &str| std::fs::canonicalize(p).ok();
    assert!(
        resolved.is_some_and(|p| canonical(p) == canonical(&format!("{multiarch}/libconntls.so.0"))),
        "the packaged redis-server does not load the packaged libconntls:\n{linked}"
    );

    // Debian's own build of the same source (the redis-server package .ci/run installs)
    // under the same trigger: it drops connections, so the trigger still bites.
    let port = free_port();
    let stock = ServerProcess::start(Path::new("/usr/bin/redis-server"), port, &tls_server_args(port), true);
    let (code, out) = run_peer(port, &BAD_LENGTH_TRIGGER);
    let logs = stock.stop();
    assert!(code == 1 && logs.contains("SSL routines::bad length"), "Debian's redis-server held under the trigger:\n{out}\n{logs}");

    let port = free_port();
    let mut redis = ServerProcess::start(&server, port, &tls_server_args(port), true);
    let (code, out) = run_peer(port, &BAD_LENGTH_TRIGGER);
    assert!(redis.alive(), "the packaged redis-server died:\n{}", redis.logs());
    let logs = redis.stop();
    assert_eq!(code, 0, "the packaged redis-server on conntls dropped a connection:\n{out}\n{logs}");
    assert!(!logs.contains("bad length"), "{logs}");
    println!("Debian 12 redis 7.0.15-1~deb12u10+conntls1 links {multiarch}/libconntls.so.0; trigger: {}", out.replace('\n', "; "));
}
