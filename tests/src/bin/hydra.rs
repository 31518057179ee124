//! The `hydra` command for the end-to-end suites (the same code as `crates/hydra-cli`).

fn main() {
    std::process::exit(hydra_cli::main_entry());
}
