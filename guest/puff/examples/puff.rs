//! `puff IN OUT` writes IN's puffed form; `puff --huff IN OUT` turns a
//! puffed form back. For measuring deltas with other tools.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (huff, rest) = match args.first().map(String::as_str) {
        Some("--huff") => (true, &args[1..]),
        _ => (false, &args[..]),
    };
    let [input, output] = rest else {
        return Err("usage: puff [--huff] IN OUT".into());
    };
    let r = std::io::BufReader::new(std::fs::File::open(input)?);
    let w = std::io::BufWriter::new(std::fs::File::create(output)?);
    if huff {
        imo_puff::huff(r, w)?;
    } else {
        imo_puff::puff(r, w)?;
    }
    Ok(())
}
