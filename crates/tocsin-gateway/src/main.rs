//! The `tocsin-gateway` binary: parses the command line and runs it (see [`tocsin_gateway::cli`]).

fn main() -> std::process::ExitCode {
    tocsin_gateway::cli::main()
}
