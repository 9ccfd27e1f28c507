use std::process::ExitCode;

use clap::Parser;
use trustpub::cli::Cli;

// Every request allocates and frees many small buffers on two or more
// threads; mimalloc does that with less contention and less work than the
// system allocator (bench/README.md, "The mint side by side").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_e`
/// (mimalloc.h; the same in versions 2 and 3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

unsafe extern "C" {
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Memory freed goes back to the system at once, not a second later: the
/// start of a large configuration (parsing 10,000 publishers, then the
/// sync) frees its intermediate copies as it goes, so its peak stays near
/// what it holds (53 instead of 75 MiB with 1,000 registries), with no cost
/// to throughput that the benchmarks could tell from their spread
/// (bench/README.md, "Scale").
fn return_freed_memory_at_once() {
    // SAFETY: both functions take an option's index and a number. The
    // index is only used when it holds a default of the purge delay
    // (10 ms in mimalloc 2, 1,000 ms in mimalloc 3), so a mimalloc whose
    // options were numbered otherwise is left as it is.
    unsafe {
        if matches!(mi_option_get(MI_OPTION_PURGE_DELAY), 10 | 1000) {
            mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    return_freed_memory_at_once();
    match Cli::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("trustpub: {error}");
            ExitCode::FAILURE
        }
    }
}
