//! Puffing any bytes, and huffing any puffed-looking stream: never a panic;
//! whatever puffs huffs back to the very same bytes. Puffed in two halves
//! from wherever `find_block` guesses a block starts, it gives the same
//! token form whenever the first half reaches a block starting exactly
//! there (what the rebuild checks before it takes a worker's half).
#![no_main]

use imo_puff::Puffer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut puffed = Vec::new();
    if imo_puff::puff(data, &mut puffed).is_ok() {
        let mut back = Vec::new();
        imo_puff::huff(&puffed[..], &mut back).expect("a puffed stream huffs");
        assert_eq!(back, data, "puff then huff changed the bytes");
        let from = data.len() as u64 / 2 * 8;
        if let Some(at) = imo_puff::find_block(data, from, data.len()) {
            let (mut first, mut puffer) = (Vec::new(), Puffer::new(data));
            while puffer.block_start().is_none_or(|b| b < at) {
                if !puffer.step_into(&mut first).expect("it puffed whole") {
                    break;
                }
            }
            if puffer.block_start() == Some(at) {
                let start = &data[(at / 8) as usize..];
                let mut second = Puffer::from_block(start, (at % 8) as u32);
                while second.step_into(&mut first).expect("the second half puffs") {}
                assert_eq!(first, puffed, "halves split at bit {at} differ");
            }
        }
    }
    // Searching and puffing from any place: never a panic.
    let _ = imo_puff::find_block(data, 0, data.len());
    let mut from_block = Puffer::from_block(data, data.len() as u32 % 8);
    let _ = std::io::Read::read_to_end(&mut from_block, &mut Vec::new());
    let mut framed = imo_puff::MAGIC.to_vec();
    framed.extend_from_slice(data);
    let _ = imo_puff::huff(&framed[..], Vec::new());
});
