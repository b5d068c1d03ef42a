//! The `hashing` import: SHA-2 in native code, which uses the CPU's SHA
//! instructions where it has them (sha2 detects them at run time).

use sha2::{Digest as _, Sha256, Sha512};

/// The state behind one guest `hasher` resource.
pub enum Hasher {
    /// SHA-256.
    Sha256(Sha256),
    /// SHA-512.
    Sha512(Sha512),
}

impl Hasher {
    /// A fresh SHA-256 (`sha512` false) or SHA-512 hasher.
    pub fn new(sha512: bool) -> Self {
        if sha512 {
            Hasher::Sha512(Sha512::new())
        } else {
            Hasher::Sha256(Sha256::new())
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far; the state is kept.
    pub fn digest(&self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.clone().finalize().to_vec(),
            Hasher::Sha512(h) => h.clone().finalize().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let mut h = Hasher::new(false);
        h.update(b"hel");
        h.update(b"lo");
        let hex: String = h.digest().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(Hasher::new(true).digest().len(), 64);
    }
}
