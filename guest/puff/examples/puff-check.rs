//! Puffs and huffs each gzip file named, checks the bytes come back, and
//! that halves puffed apart (from where `find_block` finds a block past the
//! middle) join into the same token form; prints sizes and speeds: `cargo
//! run --release -p imo-puff --example puff-check -- FILE...`. Exits 1 if
//! any file does not come back exactly.

use std::time::Instant;

fn main() {
    let mut failed = 0;
    for path in std::env::args().skip(1) {
        let gz = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                failed += 1;
                continue;
            }
        };
        let t = Instant::now();
        let mut puffed = Vec::new();
        if let Err(e) = imo_puff::puff(&gz[..], &mut puffed) {
            println!("{path}: not puffable: {e}");
            continue;
        }
        let puff_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut back = Vec::with_capacity(gz.len());
        let ok = imo_puff::huff(&puffed[..], &mut back).is_ok() && back == gz;
        let huff_s = t.elapsed().as_secs_f64();
        let mb = gz.len() as f64 / 1e6;
        let split = halves(&gz, &puffed);
        println!(
            "{path}: {} {:.1} MB -> puffed {:.1} MB; puff {:.0} MB/s, huff {:.0} MB/s (of compressed); {}",
            if ok { "exact" } else { "DIFFERENT" },
            mb,
            puffed.len() as f64 / 1e6,
            mb / puff_s,
            mb / huff_s,
            split.as_deref().unwrap_or("halves join: NO")
        );
        if !ok || split.is_none() {
            failed += 1;
        }
    }
    std::process::exit(if failed > 0 { 1 } else { 0 });
}

/// Whether `gz` puffed in two halves, split at the first block start
/// `find_block` sees past the middle, gives `puffed`: where and how long
/// the search took, or `None` if the halves differ.
fn halves(gz: &[u8], puffed: &[u8]) -> Option<String> {
    let t = Instant::now();
    let Some(at) = imo_puff::find_block(gz, gz.len() as u64 / 2 * 8, gz.len()) else {
        return Some("no block start found past the middle".into());
    };
    let search = t.elapsed().as_secs_f64() * 1e3;
    let (mut first, mut puffer) = (Vec::new(), imo_puff::Puffer::new(gz));
    while puffer.block_start().is_none_or(|b| b < at) {
        if !puffer.step_into(&mut first).ok()? {
            return None;
        }
    }
    if puffer.block_start() != Some(at) {
        // A stored block's start is ambiguous: the search takes the next.
        return Some(format!("block start guessed wrong at bit {at}"));
    }
    let start = &gz[(at / 8) as usize..];
    let mut second = imo_puff::Puffer::from_block(start, (at % 8) as u32);
    while second.step_into(&mut first).ok()? {}
    (first == puffed).then(|| {
        format!(
            "halves join at +{} bytes ({search:.1} ms)",
            at / 8 - gz.len() as u64 / 2
        )
    })
}
