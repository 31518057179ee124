//! The demo agent as a binary of this crate, so the end-to-end tests can run it by path.

fn main() {
    std::process::exit(hydra_cli::demo_agent::run_demo_agent());
}
