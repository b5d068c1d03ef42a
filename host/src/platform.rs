//! The host machine's platform, which selects a child out of an index by default.

use anyhow::Result;

use crate::runtime::Platform;

/// This machine's platform in OCI terms.
pub fn host() -> Platform {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let variant = match architecture {
        "arm" => Some("v7".to_string()),
        _ => None,
    };
    Platform {
        os: os.to_string(),
        architecture: architecture.to_string(),
        variant,
    }
}

/// Parses `--platform OS/ARCH[/VARIANT]` with the guest's own parser.
pub fn parse(s: &str) -> Result<Platform> {
    let p = imo_grammar::platform::Platform::parse(s)?;
    Ok(Platform {
        os: p.os,
        architecture: p.architecture,
        variant: p.variant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_platforms() {
        let p = parse("linux/arm/v7").unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "arm", Some("v7"))
        );
        for bad in ["linux", "linux/", "a/b/c/d", "/amd64"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(!host().architecture.is_empty());
    }
}
