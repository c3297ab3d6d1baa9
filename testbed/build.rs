//! Link options for the `tribute-assistant` binary (and only it: tests and
//! benchmarks link as Cargo does by default).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Relative relocations packed (DT_RELR): the binary stays
    // position-independent (ASLR), and its relocation table shrinks from
    // 1.4 MiB — one entry per pointer in vtables and static data — to a few
    // KiB. The loader must know the format: glibc 2.36 or later (Debian 12,
    // Ubuntu 22.10), and GNU ld 2.38 to write it. Only when building for the
    // machine that builds (a cross build links as before) and its glibc is
    // new enough: a binary built with it does not start on an older glibc.
    let host = std::env::var("HOST").unwrap_or_default();
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-linux-gnu") && host == target && glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The build machine's glibc version (`getconf GNU_LIBC_VERSION`: "glibc 2.36").
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else { return false };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.trim().trim_start_matches("glibc ").split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}
