//! The Go imo README's push, in Rust: vet that the destination holds what
//! the archive leaves out, then land the image with its original digests.
//!
//! ```sh
//! cargo run --release --example push -- app-v2.tar registry.internal/app:v2
//! ```

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [archive, destination] = args.as_slice() else {
        return Err("usage: push ARCHIVE DESTINATION".into());
    };

    let mut builder = imo::Imo::builder();
    // Credentials as the Go example takes them: from the environment.
    if let (Ok(user), Ok(password)) = (std::env::var("IMO_USER"), std::env::var("IMO_PASSWORD")) {
        builder = builder.dest_auth(&user, &password);
    }
    let imo = builder.build()?;

    if let imo::Outcome::Single(vet) = imo.vet(archive, destination)? {
        if !vet.missing.is_empty() {
            for m in &vet.missing {
                eprintln!("missing {} ({} bytes)", m.digest, m.size);
            }
            return Err(format!("{destination} lacks what the archive leaves out").into());
        }
    }
    match imo.push(archive, destination)? {
        imo::Outcome::Single(r) => println!("{} {}", r.destination, r.digest),
        imo::Outcome::Set(images) => {
            for i in images {
                match i.outcome {
                    Ok(r) => println!("{} {}", r.destination, r.digest),
                    Err(e) => eprintln!("{}: {}", i.target, imo::Error::from(e)),
                }
            }
        }
    }
    Ok(())
}
