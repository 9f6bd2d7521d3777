//! c_tests/cert_info.c: certificate facts and peer fields against `openssl x509`.
mod common;
use common::*;

use std::process::Command;

/// (notAfter in seconds since the epoch, serial in upper-case hex) as `openssl x509` says.
fn x509_facts(name: &str) -> (String, String) {
    let out = Command::new("openssl").args(["x509", "-noout", "-enddate", "-serial", "-in"]).arg(certs().join(name)).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("{key} in {text}")).to_string();
    let date = Command::new("date").args(["-u", "-d", &field("notAfter="), "+%s"]).output().unwrap();
    (String::from_utf8_lossy(&date.stdout).trim().to_string(), field("serial="))
}

fn expected() -> Vec<String> {
    let (server_end, server_serial) = x509_facts("server.crt");
    let (_, server2_serial) = x509_facts("server2.crt");
    let (client_end, client_serial) = x509_facts("client.crt");
    let (ca_end, ca_serial) = x509_facts("ca.crt");
    let (other_end, other_serial) = x509_facts("other-ca.crt");
    vec![server_end, server_serial, server2_serial, client_end, client_serial, ca_end, ca_serial, other_end, other_serial]
}

#[test]
fn cert_info_matches_openssl_x509() {
    let args = expected();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_c("cert_info", Link::Shared, &args);
}

#[test]
fn cert_info_asan_ubsan() {
    let args = expected();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_c("cert_info", Link::Sanitized, &args);
}
