//! `WWW-Authenticate` challenges: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        for c in imo_grammar::challenge::parse(s) {
            let _ = c.params.get("realm");
        }
    }
});
