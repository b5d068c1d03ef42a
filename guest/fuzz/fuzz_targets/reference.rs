//! Image references, transport names and set prefixes: parse, print, parse
//! again; never a panic, and what prints parses to the same thing.
#![no_main]

use imo_grammar::reference::Reference;
use imo_grammar::transport::{Prefix, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Reference::parse(s) {
        // The printed form is normal: it parses to itself.
        let printed = r.to_string();
        let again = Reference::parse(&printed).expect("a printed reference parses");
        assert_eq!(again.to_string(), printed);
        assert_eq!(again.manifest_reference(), r.manifest_reference());
    }
    if let Ok(t) = Transport::parse(s) {
        let _ = t.to_string();
        let _ = t.path();
    }
    let _ = Transport::parse_file(s);
    if let Ok(p) = Prefix::parse(s) {
        let _ = p.target("team/app", "v1");
    }
});
