//! Set files (YAML or plain lines): never a panic; every image parsed has
//! a usable target.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(images) = imo_grammar::set::parse(s, "fuzz") {
            for i in images {
                imo_grammar::set::Target::parse(&i.target.to_string()).expect("a target reparses");
            }
        }
    }
});
