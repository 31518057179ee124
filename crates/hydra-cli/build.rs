//! Links the `hydra` binary (and the benchmarks, one of which runs itself as the least a
//! `hydra`-like process can cost) for a short start on Linux with a GNU-compatible linker
//! driver:
//!
//! - as a position-dependent executable: a PIE of this size has some 58,000 relative
//!   relocations, which the dynamic loader applies (touching and copying the pages they are
//!   in) at every start, about a millisecond of each short command such as `hydra ls`. The
//!   code is compiled position-independent as usual; only the final link differs.
//! - with GCC's unwinder (`libgcc_eh.a`, the static half of `libgcc_s`) inside it, when the
//!   C compiler has it: the loader then has no `libgcc_s.so.1` to find, map and relocate, and
//!   that library's constructor, which asks the CPU what it supports through CPUID, does not
//!   run (in a virtual machine each CPUID is a trip to the hypervisor). Unwinding and
//!   backtraces work as before; whole-archive so that its definitions take the place of the
//!   shared library's, which `--as-needed` then drops.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bin=hydra=-no-pie");
        println!("cargo:rustc-link-arg-benches=-no-pie");
        // The host's C compiler knows the host's libgcc_eh.a: not for a cross build.
        let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
        if env == "gnu" && native {
            if let Some(unwinder) = static_unwinder() {
                let arg = format!("-Wl,--push-state,--whole-archive,{},--pop-state", unwinder.display());
                println!("cargo:rustc-link-arg-bin=hydra={arg}");
                println!("cargo:rustc-link-arg-benches={arg}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// Where the C compiler (rustc's default linker driver, `cc`) keeps `libgcc_eh.a`, if it has
/// one: it prints the bare name back when it does not.
fn static_unwinder() -> Option<PathBuf> {
    let out = Command::new("cc").arg("-print-file-name=libgcc_eh.a").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (path.is_absolute() && path.is_file()).then_some(path)
}
