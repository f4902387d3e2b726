//! `State::open` (a `--state` file, which whoever can write it may have forged) on arbitrary
//! bytes: refused or opened, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = trailproof::state::State::open(data, "fuzz", None);
});
