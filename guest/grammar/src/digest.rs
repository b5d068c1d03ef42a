//! Content digests (`sha256:…`): parsed once, never holding a bad value.

use std::fmt;

use crate::error::{Error, Result};

/// Hash algorithms imo can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// `sha256`, the registry default.
    Sha256,
    /// `sha512`, allowed by the OCI spec.
    Sha512,
}

impl Algorithm {
    /// The name digests use, e.g. `sha256`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest: a known algorithm and lowercase hex of the right length.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses `alg:hex`, rejecting unknown algorithms and malformed hex.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidArgument(format!("invalid digest {s:?}: {why}"));
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| bad("expected ALGORITHM:HEX"))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(bad("unsupported algorithm")),
        };
        if hex.len() != algorithm.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad(&format!(
                "expected {} lowercase hex digits",
                algorithm.hex_len()
            )));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The digest whose raw hash output is `raw`; `None` if its length is
    /// not the algorithm's.
    pub fn from_raw(algorithm: Algorithm, raw: &[u8]) -> Option<Self> {
        use std::fmt::Write;
        if raw.len() * 2 != algorithm.hex_len() {
            return None;
        }
        let hex = raw
            .iter()
            .fold(String::with_capacity(raw.len() * 2), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
        Some(Digest { algorithm, hex })
    }

    /// The algorithm name, e.g. `sha256`.
    pub fn algorithm(&self) -> &'static str {
        self.algorithm.name()
    }

    /// The algorithm.
    pub fn kind(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The path of this blob inside an OCI layout: `blobs/sha256/<hex>`.
    pub fn blob_path(&self) -> String {
        format!("blobs/{}/{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn parses_and_prints() {
        let d = Digest::parse(HELLO).unwrap();
        assert_eq!(d.to_string(), HELLO);
        assert_eq!(d.blob_path(), format!("blobs/sha256/{}", &HELLO[7..]));
        assert_eq!(d.kind(), Algorithm::Sha256);
        let raw: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&HELLO[7 + 2 * i..9 + 2 * i], 16).unwrap())
            .collect();
        assert_eq!(Digest::from_raw(Algorithm::Sha256, &raw), Some(d));
        assert_eq!(Digest::from_raw(Algorithm::Sha512, &raw), None);
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "sha256",
            "md5:abcd",
            "sha256:ABC",
            &HELLO.to_uppercase(),
            &HELLO[..70],
            "sha512:2cf2",
        ] {
            let err = Digest::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
