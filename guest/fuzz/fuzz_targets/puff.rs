//! Puffing any bytes, and huffing any puffed-looking stream: never a panic;
//! whatever puffs huffs back to the very same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut puffed = Vec::new();
    if imo_puff::puff(data, &mut puffed).is_ok() {
        let mut back = Vec::new();
        imo_puff::huff(&puffed[..], &mut back).expect("a puffed stream huffs");
        assert_eq!(back, data, "puff then huff changed the bytes");
    }
    let mut framed = imo_puff::MAGIC.to_vec();
    framed.extend_from_slice(data);
    let _ = imo_puff::huff(&framed[..], Vec::new());
});
