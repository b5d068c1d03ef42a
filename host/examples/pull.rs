//! The Go imo README's pull, in Rust: the archive of FINAL without what
//! BASE has, streamed into a file as it is made.
//!
//! ```sh
//! cargo run --release --example pull -- registry.example/app:v1 registry.example/app:v2 app-v2.tar
//! ```

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, final_, out] = args.as_slice() else {
        return Err("usage: pull BASE FINAL OUT.tar".into());
    };

    let imo = imo::Imo::builder()
        .progress(|event| {
            if let imo::ProgressEvent::BlobFinished(digest) = event {
                eprintln!("copied {digest}");
            }
        })
        .build()?;

    // Written under a temporary name and renamed when complete, so OUT is
    // never a half-written archive.
    let temp = format!("{out}.part");
    let mut archive = imo.pull(base, final_)?;
    let mut file = std::fs::File::create(&temp)?;
    let copied = std::io::copy(&mut archive, &mut file).and_then(|_| file.flush());
    let report = match copied {
        Ok(()) => archive.finish(),
        Err(e) => {
            std::fs::remove_file(&temp).ok();
            return Err(e.into());
        }
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            std::fs::remove_file(&temp).ok();
            return Err(e.into());
        }
    };
    std::fs::rename(&temp, out)?;
    println!(
        "{out}: {} ({} bytes), {} layer(s) left out",
        report.digest, report.archive_size, report.layers_left_out
    );
    Ok(())
}
