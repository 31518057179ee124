//! Links the `hydra` binary as a position-dependent executable: a PIE of this size has some
//! 58,000 relative relocations, which the dynamic loader applies (touching and copying the
//! pages they are in) at every start, about a millisecond of each short command such as
//! `hydra ls`. The code is compiled position-independent as usual; only the final link
//! differs, and only on Linux with a GNU-compatible linker driver. The benchmarks are linked
//! the same way: one of them runs itself as the least a `hydra`-like process can cost.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bin=hydra=-no-pie");
        println!("cargo:rustc-link-arg-benches=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
