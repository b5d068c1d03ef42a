//! Inventory files carried back from the far side: never a panic.
#![no_main]

use imo_guest::inventory::{digests, Inventory};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("imo-fuzz-inventory-{}", std::process::id()));
    std::fs::write(&path, data).expect("scratch file");
    if let Ok(inv) = Inventory::read(path.to_str().expect("utf-8")) {
        let _ = digests(&inv);
        let mut bases = imo_guest::base::Bases::none();
        let _ = bases.add_inventory(&inv, "fuzz");
    }
});
