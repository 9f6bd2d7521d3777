//! The Debian packages: from a copy of the tree, vendored as a release would be
//! (scripts/vendor.sh), `dpkg-buildpackage -us -uc -b -d` builds libconntls0,
//! libconntls-dev and libconntls0-dbgsym offline; lintian finds no error or warning; the
//! packages install, a C program builds against them with pkg-config and runs; they are
//! purged again. While they are installed, Debian 12's redis source package is rebuilt
//! on conntls the way a distribution would (scripts/debian-package.sh) and its
//! redis-server, unpacked with dpkg -x, is run under the "bad length" trigger; so is
//! Debian unstable's valkey 9.1.x, whose own autopkgtests then run on the installed
//! packages, and Debian 12's memcached, likewise. Needs root and debhelper, lintian and
//! dpkg-dev (`.ci/run` installs them); skipped, loudly, where they are missing.
mod common;
use common::*;

use common::memcached;
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
    debian_valkey_on_the_packaged_conntls(&scratch, multiarch);
    debian_memcached_on_the_packaged_conntls(&scratch, multiarch);
    drop(_installed);
    assert!(!installed.exists(), "the packages were not purged");
    std::fs::remove_dir_all(&scratch).ok();
}

/// dpkg-buildpackage of an unpacked server source package that scripts/debian-package.sh
/// has turned to conntls, against the installed libconntls-dev (the build dependencies are
/// checked: no -d), without its upstream test suite.
fn build_on_the_packaged_conntls(tree: &Path, multiarch: &str) -> String {
    run(Command::new(root().join("scripts/debian-package.sh")).arg(tree));
    let build = Command::new("dpkg-buildpackage")
        .args(["-us", "-uc", "-b"])
        .current_dir(tree)
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
    assert!(build.status.success(), "dpkg-buildpackage of {} on conntls failed:\n{log}", tree.display());
    log
}

/// The version of an unpacked source package (its changelog's first entry).
fn package_version(tree: &Path) -> String {
    run(Command::new("dpkg-parsechangelog").args(["-S", "Version"]).current_dir(tree)).trim().to_string()
}

/// The .deb files a build of `tree` at `version` left beside it, by binary package name.
fn built_debs(tree: &Path, version: &str, packages: &[&str], log: &str) -> Vec<std::path::PathBuf> {
    let version = version.split_once(':').map_or(version, |(_, v)| v); // no epoch in file names
    let debs: Vec<_> = packages.iter().map(|p| tree.parent().unwrap().join(format!("{p}_{version}_amd64.deb"))).collect();
    for deb in &debs {
        assert!(deb.exists(), "{} was not built:\n{log}", deb.display());
    }
    debs
}

/// A packaged server binary needs libconntls.so.0 and loads the packaged one.
fn assert_links_the_packaged_conntls(server: &Path, multiarch: &str) {
    let dynamic = run(Command::new("readelf").arg("-d").arg(server));
    assert!(dynamic.contains("[libconntls.so.0]"), "{} does not link libconntls:\n{dynamic}", server.display());
    let linked = run(Command::new("ldd").arg(server).env_remove("LD_LIBRARY_PATH"));
    // The packaged library (/lib is /usr/lib on Debian 12).
    let resolved = linked.lines().find_map(|l| l.trim().strip_prefix("libconntls.so.0 => ")).and_then(|l| l.split_whitespace().next());
    let canonical = |p: &str| std::fs::canonicalize(p).ok();
    assert!(
        resolved.is_some_and(|p| canonical(p) == canonical(&format!("{multiarch}/libconntls.so.0"))),
        "{} does not load the packaged libconntls:\n{linked}",
        server.display()
    );
}

/// A packaged server on conntls under the "bad length" trigger: alive, no connection
/// dropped, no write error logged (neither OpenSSL's nor Valkey's own retry check). Returns
/// what the trigger's peer printed.
fn holds_the_bad_length_trigger(server: &Path) -> String {
    let port = free_port();
    let mut process = ServerProcess::start(server, port, &tls_server_args(port), true);
    let (code, out) = run_peer(port, &BAD_LENGTH_TRIGGER);
    assert!(process.alive(), "the packaged {} died:\n{}", server.display(), process.logs());
    let logs = process.stop();
    assert_eq!(code, 0, "the packaged {} on conntls dropped a connection:\n{out}\n{logs}", server.display());
    assert!(!logs.contains("bad length") && !logs.contains("cannot satisfy"), "{logs}");
    out
}

/// Debian 12's redis (fetched by package name), rebuilt on the packaged conntls. Its
/// redis-server drops no connection under the trigger that makes Debian's own drop them
/// all (tests/redis.rs).
fn debian_redis_on_the_packaged_conntls(scratch: &Path, multiarch: &str) {
    let src = scratch.join("redis-src");
    run(Command::new(root().join("scripts/debian-source.sh")).args(["redis", "5:7.0.15-1~deb12u10"]).arg(&src));
    let tree = src.join("redis-7.0.15");
    let log = build_on_the_packaged_conntls(&tree, multiarch);
    // redis-server is a link to redis-check-rdb, which redis-tools carries.
    let unpacked = scratch.join("redis-debs");
    for deb in built_debs(&tree, &package_version(&tree), &["redis-server", "redis-tools"], &log) {
        run(Command::new("dpkg").arg("-x").arg(deb).arg(&unpacked));
    }
    let server = unpacked.join("usr/bin/redis-server");
    assert_links_the_packaged_conntls(&server, multiarch);

    // Debian's own build of the same source (the redis-server package .ci/run installs)
    // under the same trigger: it drops connections, so the trigger still bites.
    let port = free_port();
    let stock = ServerProcess::start(Path::new("/usr/bin/redis-server"), port, &tls_server_args(port), true);
    let (code, out) = run_peer(port, &BAD_LENGTH_TRIGGER);
    let logs = stock.stop();
    assert!(code == 1 && logs.contains("SSL routines::bad length"), "Debian's redis-server held under the trigger:\n{out}\n{logs}");

    let out = holds_the_bad_length_trigger(&server);
    println!("Debian 12 redis 7.0.15-1~deb12u10+conntls1 links {multiarch}/libconntls.so.0; trigger: {}", out.replace('\n', "; "));
}

/// A server's packages installed for its autopkgtests: when the test ends, whichever way,
/// the service is stopped, the packages purged, and the system user their postinst
/// created removed when it was not there before.
struct ServerInstalled {
    service: &'static str,
    packages: &'static [&'static str],
    user: &'static str,
    user_was_there: bool,
}

impl ServerInstalled {
    /// Installs `debs` (the packages named `packages`).
    fn install(debs: &[std::path::PathBuf], service: &'static str, packages: &'static [&'static str], user: &'static str) -> ServerInstalled {
        let user_was_there = Command::new("getent").args(["passwd", user]).output().is_ok_and(|o| o.status.success());
        let installed = ServerInstalled { service, packages, user, user_was_there };
        run(Command::new("dpkg").arg("-i").args(debs));
        installed
    }
}

impl Drop for ServerInstalled {
    fn drop(&mut self) {
        // The init script stops the daemon it started, by its pid file.
        let _ = Command::new("service").args([self.service, "stop"]).output();
        let _ = Command::new("dpkg").arg("--purge").args(self.packages).output();
        if !self.user_was_there {
            let _ = Command::new("userdel").arg(self.user).output();
        }
    }
}

/// The source package's own autopkgtests, as autopkgtest runs them: each debian/tests
/// script from the source tree, as root, against the installed packages. Asserts that
/// debian/tests/control still names `expected` tests and that each passes; their names.
fn run_autopkgtests(tree: &Path, scratch: &Path, expected: usize, what: &str) -> Vec<String> {
    let control = std::fs::read_to_string(tree.join("debian/tests/control")).unwrap();
    let tests: Vec<&str> = control.lines().filter_map(|l| l.strip_prefix("Tests:")).flat_map(|t| t.split([',', ' '])).filter(|t| !t.is_empty()).collect();
    assert_eq!(tests.len(), expected, "{what}: debian/tests/control changed: {tests:?}");
    let mut passed = Vec::new();
    for test in &tests {
        let tmp = scratch.join(format!("autopkgtest-{test}"));
        std::fs::create_dir_all(&tmp).unwrap();
        let script = tree.join("debian/tests").join(test);
        // By its #! line (sh, bash, perl), as autopkgtest runs it; the file's mode is not
        // relied on (valkey's scripts are not executable in the unpacked source).
        let text = std::fs::read_to_string(&script).unwrap();
        let interpreter: Vec<&str> = text.lines().next().and_then(|l| l.strip_prefix("#!")).map_or(vec!["sh"], |l| l.split_whitespace().collect());
        let out = Command::new(interpreter[0])
            .args(&interpreter[1..])
            .arg(&script)
            .current_dir(tree)
            .env("AUTOPKGTEST_TMP", &tmp)
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "autopkgtest {test} failed on {what} on conntls:\n{text}");
        passed.push(test.to_string());
    }
    passed
}

/// Debian unstable's newest valkey 9.1.x (fetched by package name; 9.1.2-1 today), rebuilt
/// on the packaged conntls. Its valkey-server holds the "bad length" trigger (stock 9.1.2
/// holds it too: Valkey fixed it in #1737 and #4307; tests/valkey.rs records that), and the
/// package's own autopkgtests (debian/tests: valkey-cli, benchmark, check-aof, check-rdb,
/// cjson; all needs-root, they restart the installed valkey-server) pass on the installed
/// packages, which are purged again.
fn debian_valkey_on_the_packaged_conntls(scratch: &Path, multiarch: &str) {
    let src = scratch.join("valkey-src");
    let fetched = run(Command::new(root().join("scripts/debian-source.sh")).args(["valkey", "9.1.x"]).arg(&src));
    let tree = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("valkey-9.1."))
        .unwrap_or_else(|| panic!("no valkey-9.1.* tree in {}:\n{fetched}", src.display()));
    // The backport to Debian 12 that any rebuild of unstable's package there needs,
    // conntls or not: bookworm's systemd-sysusers (252) refuses the `u!` (locked account)
    // of debian/valkey-tools.sysusers, added in systemd 254, and the postinst fails.
    let sysusers = tree.join("debian/valkey-tools.sysusers");
    let users = std::fs::read_to_string(&sysusers).unwrap();
    std::fs::write(&sysusers, users.replace("u! valkey ", "u valkey ")).unwrap();
    let log = build_on_the_packaged_conntls(&tree, multiarch);
    let version = package_version(&tree);
    let debs = built_debs(&tree, &version, &["valkey-tools", "valkey-server"], &log);
    let unpacked = scratch.join("valkey-debs");
    for deb in &debs {
        run(Command::new("dpkg").arg("-x").arg(deb).arg(&unpacked));
    }
    let server = unpacked.join("usr/bin/valkey-server");
    assert_links_the_packaged_conntls(&server, multiarch);
    assert_links_the_packaged_conntls(&unpacked.join("usr/bin/valkey-cli"), multiarch);

    let out = holds_the_bad_length_trigger(&server);

    let _installed = ServerInstalled::install(&debs, "valkey-server", &["valkey-server", "valkey-tools"], "valkey");
    let passed = run_autopkgtests(&tree, scratch, 5, "valkey");
    let installed_server = run(Command::new("readelf").args(["-d", "/usr/bin/valkey-server"]));
    assert!(installed_server.contains("[libconntls.so.0]"), "{installed_server}");
    drop(_installed);
    assert!(!Path::new("/usr/bin/valkey-server").exists(), "the valkey packages were not purged");
    println!(
        "Debian valkey {version} links {multiarch}/libconntls.so.0; trigger: {}; autopkgtests passed: {}",
        out.trim().replace('\n', "; "),
        passed.join(" ")
    );
}

/// Debian 12's memcached (fetched by package name), rebuilt on the packaged conntls. Its
/// memcached answers a request left inside a TLS record (stock waits for the client's
/// next bytes: tests/memcached.rs), and the package's own autopkgtests (daemon, client.pl:
/// the installed service started by its init script, then spoken to) pass on the
/// installed package, which is purged again.
fn debian_memcached_on_the_packaged_conntls(scratch: &Path, multiarch: &str) {
    let src = scratch.join("memcached-src");
    run(Command::new(root().join("scripts/debian-source.sh")).args(["memcached", "1.6.18-1+deb12u1"]).arg(&src));
    let tree = src.join("memcached-1.6.18");
    let log = build_on_the_packaged_conntls(&tree, multiarch);
    let version = package_version(&tree);
    let debs = built_debs(&tree, &version, &["memcached"], &log);
    let unpacked = scratch.join("memcached-debs");
    run(Command::new("dpkg").arg("-x").arg(&debs[0]).arg(&unpacked));
    let server = unpacked.join("usr/bin/memcached");
    assert_links_the_packaged_conntls(&server, multiarch);
    let process = memcached::start(&server, &certs().join("server.crt"), &certs().join("server.key"), &[]);
    assert_eq!(memcached::client(&process, "pending", &[]), "answered\n", "the packaged memcached");
    drop(process);

    let _installed = ServerInstalled::install(&debs, "memcached", &["memcached"], "memcache");
    let passed = run_autopkgtests(&tree, scratch, 2, "memcached");
    let installed_server = run(Command::new("readelf").args(["-d", "/usr/bin/memcached"]));
    assert!(installed_server.contains("[libconntls.so.0]"), "{installed_server}");
    drop(_installed);
    assert!(!Path::new("/usr/bin/memcached").exists(), "the memcached package was not purged");
    println!("Debian memcached {version} links {multiarch}/libconntls.so.0; autopkgtests passed: {}", passed.join(" "));
}
