//! Gives the C shared library its SONAME, so programs linked against
//! `libgopherdiscovery.so` record `libgopherdiscovery.so.0` and keep working
//! across compatible (same major ABI) upgrades. Only the cdylib is affected.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The C ABI's major version; bump it (and the header's promise) only on a
    // breaking change of `include/gopherdiscovery.h`.
    const ABI_MAJOR: u32 = 0;
    match std::env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("linux") | Ok("freebsd") | Ok("netbsd") | Ok("openbsd") | Ok("dragonfly") => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libgopherdiscovery.so.{ABI_MAJOR}");
        }
        Ok("macos") | Ok("ios") => {
            println!(
                "cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libgopherdiscovery.{ABI_MAJOR}.dylib"
            );
        }
        _ => {}
    }
}
