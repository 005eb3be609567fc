//! The `claudecron` binary: hands the command line to `cli` and exits with its code.

fn main() {
    std::process::exit(claudecron::cli::main(std::env::args().collect()));
}
