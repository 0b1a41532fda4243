fn main() {
    std::process::exit(iocfeed::cli::main());
}
