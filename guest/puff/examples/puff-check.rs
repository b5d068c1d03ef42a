//! Puffs and huffs each gzip file named, checks the bytes come back, and
//! prints sizes and speeds: `cargo run --release -p imo-puff --example
//! puff-check -- FILE...`. Exits 1 if any file does not come back exactly.

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
        println!(
            "{path}: {} {:.1} MB -> puffed {:.1} MB; puff {:.0} MB/s, huff {:.0} MB/s (of compressed)",
            if ok { "exact" } else { "DIFFERENT" },
            mb,
            puffed.len() as f64 / 1e6,
            mb / puff_s,
            mb / huff_s
        );
        if !ok {
            failed += 1;
        }
    }
    std::process::exit(if failed > 0 { 1 } else { 0 });
}
