//! The `hydra` binary: everything is in the library, see `hydra_cli::main_entry`.

fn main() {
    std::process::exit(hydra_cli::main_entry());
}
