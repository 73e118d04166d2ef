//! The `kiln` binary. Everything lives in the library: [`kiln::commands`] is the CLI layer.

fn main() -> std::process::ExitCode {
    kiln::commands::main()
}
