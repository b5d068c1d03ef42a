//! Credentials the host hands the component on request. The component never
//! sees a credential file or the environment.

use anyhow::{bail, Result};

use crate::runtime::{BasicCredential, Credential, Role};

/// What the user gave on the command line, per role.
#[derive(Default)]
pub struct Credentials {
    base: Option<BasicCredential>,
    final_: Option<BasicCredential>,
    destination: Option<BasicCredential>,
}

fn parse(flag: &str, value: &str) -> Result<BasicCredential> {
    match value.split_once(':') {
        Some((user, password)) if !user.is_empty() => Ok(BasicCredential {
            username: user.to_string(),
            password: password.to_string(),
        }),
        _ => bail!("{flag} expects USER:PASSWORD"),
    }
}

impl Credentials {
    /// From `--base-creds` and `--final-creds`.
    pub fn sources(base: Option<&str>, final_: Option<&str>) -> Result<Self> {
        Ok(Credentials {
            base: base.map(|v| parse("--base-creds", v)).transpose()?,
            final_: final_.map(|v| parse("--final-creds", v)).transpose()?,
            destination: None,
        })
    }

    /// From `--dest-creds`.
    pub fn destination(dest: Option<&str>) -> Result<Self> {
        Ok(Credentials {
            destination: dest.map(|v| parse("--dest-creds", v)).transpose()?,
            ..Credentials::default()
        })
    }

    /// The credential for `role`; the registry will matter once auth files are read.
    pub fn lookup(&self, _registry: &str, role: Role) -> Option<Credential> {
        let found = match role {
            Role::Base => &self.base,
            Role::Final => &self.final_,
            Role::Destination => &self.destination,
        };
        found.clone().map(Credential::Basic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_per_role() {
        let c = Credentials::sources(Some("a:b:c"), None).unwrap();
        match c.lookup("r", Role::Base) {
            Some(Credential::Basic(b)) => {
                assert_eq!((b.username.as_str(), b.password.as_str()), ("a", "b:c"))
            }
            _ => panic!("no base credential"),
        }
        assert!(c.lookup("r", Role::Final).is_none());
        let err = Credentials::sources(None, Some("nopassword"))
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "--final-creds expects USER:PASSWORD");
    }
}
