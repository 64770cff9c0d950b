//! The `bitsmooth` command-line tool: the browser's engine, scripted natively.
fn main() {
    if let Err(e) = bitsmooth::cli::run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
