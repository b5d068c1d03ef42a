//! Credentials the host hands the component on request, found the way
//! docker, podman and skopeo users already keep them. The component never
//! sees a credential file, a helper or the environment.
//!
//! Order for each role: the CLI flag (`--base-creds`, `--final-creds`,
//! `--dest-creds`), then `--authfile`, `REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json` and `~/.docker/config.json`. In
//! each file, a `credHelpers` entry for the registry wins over `credsStore`,
//! which wins over `auths`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde::Deserialize;

use crate::runtime::{BasicCredential, Credential, Role};

/// The key docker uses for Docker Hub in files and helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

pub use imo_grammar::reference::normalise_registry;

/// Everything the user configured, read once up front.
#[derive(Default, Clone)]
pub struct Credentials {
    flags: HashMap<&'static str, BasicCredential>,
    callback: Option<std::sync::Arc<crate::library::CredentialFn>>,
    files: Vec<(PathBuf, AuthFile)>,
    /// Directory searched for `docker-credential-*` first (tests); else PATH.
    helper_dir: Option<PathBuf>,
}

fn role_key(role: Role) -> &'static str {
    match role {
        Role::Base => "base",
        Role::Final => "final",
        Role::Destination => "destination",
    }
}

/// Where auth files are looked for, in order.
pub fn default_auth_files(authfile: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(f) = authfile {
        out.push(f.to_path_buf());
    }
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        out.push(PathBuf::from(f));
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        out.push(PathBuf::from(dir).join("containers/auth.json"));
    }
    let docker = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
    if let Some(d) = docker {
        out.push(d.join("config.json"));
    }
    out
}

/// Parses `USER[:PASSWORD]`; without a password, asks on the terminal.
pub fn parse_flag(flag: &str, value: &str) -> Result<BasicCredential> {
    let (user, password) = match value.split_once(':') {
        Some((u, p)) => (u, Some(p.to_string())),
        None => (value, None),
    };
    if user.is_empty() {
        bail!("{flag} expects USER[:PASSWORD]");
    }
    let password = match password {
        Some(p) => p,
        None if std::io::stdin().is_terminal() => {
            eprint!("Password for {user} ({flag}): ");
            std::io::stderr().flush().ok();
            rpassword::read_password().with_context(|| format!("reading the password for {flag}"))?
        }
        None => bail!("{flag} has no password and there is no terminal to ask for one: use {flag} USER:PASSWORD"),
    };
    Ok(BasicCredential {
        username: user.to_string(),
        password,
    })
}

impl Credentials {
    /// Flags per role (`None` for roles this command does not use) and the
    /// auth files to consult; a file that exists but cannot be parsed is an error.
    pub fn load(flags: [(Role, &str, Option<&str>); 3], files: &[PathBuf]) -> Result<Self> {
        let mut creds = Credentials::default();
        for (role, flag, value) in flags {
            if let Some(v) = value {
                creds.flags.insert(role_key(role), parse_flag(flag, v)?);
            }
        }
        for path in files {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot read auth file {}", path.display()))
                }
            };
            let parsed: AuthFile = serde_json::from_str(&text)
                .with_context(|| format!("auth file {} is not valid JSON", path.display()))?;
            creds.files.push((path.clone(), parsed));
        }
        Ok(creds)
    }

    /// Uses `credential` for every registry in `role`.
    pub fn set(&mut self, role: Role, credential: BasicCredential) {
        self.flags.insert(role_key(role), credential);
    }

    /// Asks `f` when no flag names a credential for the role, before the files.
    pub fn set_callback(&mut self, f: std::sync::Arc<crate::library::CredentialFn>) {
        self.callback = Some(f);
    }

    /// Looks for `docker-credential-*` helpers in `dir` before PATH.
    #[cfg(test)]
    fn with_helper_dir(mut self, dir: &Path) -> Self {
        self.helper_dir = Some(dir.to_path_buf());
        self
    }

    /// The credential for `registry` in `role`, if any is configured.
    pub fn lookup(&self, registry: &str, role: Role) -> Option<Credential> {
        if let Some(b) = self.flags.get(role_key(role)) {
            return Some(Credential::Basic(b.clone()));
        }
        if let Some(c) = self.callback.as_ref().and_then(|f| f(registry, role)) {
            return Some(c);
        }
        let registry = normalise_registry(registry);
        for (path, file) in &self.files {
            let helper = file
                .cred_helpers
                .iter()
                .find(|(k, _)| normalise_registry(k) == registry)
                .map(|(_, v)| v)
                .or(file.creds_store.as_ref());
            if let Some(helper) = helper {
                match self.run_helper(helper, &registry) {
                    Ok(Some(c)) => return Some(c),
                    Ok(None) => {}
                    Err(e) => eprintln!(
                        "imo: warning: credential helper {helper} (from {}): {e:#}",
                        path.display()
                    ),
                }
            }
            let entry = file
                .auths
                .iter()
                .find(|(k, _)| normalise_registry(k) == registry)
                .map(|(_, v)| v);
            if let Some(c) = entry.and_then(from_entry) {
                return Some(c);
            }
        }
        None
    }

    /// Runs `docker-credential-NAME get` with the server URL on stdin.
    fn run_helper(&self, name: &str, registry: &str) -> Result<Option<Credential>> {
        let program = format!("docker-credential-{name}");
        let program = match &self.helper_dir {
            Some(d) if d.join(&program).exists() => d.join(&program),
            _ => PathBuf::from(program),
        };
        let server = if registry == "docker.io" {
            DOCKER_HUB_KEY.to_string()
        } else {
            registry.to_string()
        };
        let mut child = Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", program.display()))?;
        child
            .stdin
            .take()
            .context("helper stdin")?
            .write_all(server.as_bytes())
            .context("writing to the helper")?;
        let out = child.wait_with_output().context("waiting for the helper")?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stdout).to_lowercase()
                + &String::from_utf8_lossy(&out.stderr).to_lowercase();
            if msg.contains("not found") {
                return Ok(None);
            }
            bail!("it failed ({})", out.status);
        }
        #[derive(Deserialize)]
        struct HelperReply {
            #[serde(rename = "Username")]
            username: String,
            #[serde(rename = "Secret")]
            secret: String,
        }
        let reply: HelperReply =
            serde_json::from_slice(&out.stdout).context("its answer is not valid JSON")?;
        if reply.username == "<token>" {
            return Ok(Some(Credential::IdentityToken(reply.secret)));
        }
        Ok(Some(Credential::Basic(BasicCredential {
            username: reply.username,
            password: reply.secret,
        })))
    }
}

fn from_entry(e: &AuthEntry) -> Option<Credential> {
    if let Some(t) = e.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Some(Credential::IdentityToken(t.clone()));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(e.auth.as_ref()?.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Credential::Basic(BasicCredential {
        username: user.to_string(),
        password: password.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(c: Option<Credential>) -> (String, String) {
        match c {
            Some(Credential::Basic(b)) => (b.username, b.password),
            other => panic!("expected basic, got {}", other.is_some()),
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn write(dir: &Path, name: &str, json: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, json).unwrap();
        p
    }

    #[test]
    fn flags_come_first_per_role() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "auth.json",
            &format!(
                r#"{{"auths":{{"r:5000":{{"auth":"{}"}}}}}}"#,
                b64("file:pw")
            ),
        );
        let c = Credentials::load(
            [
                (Role::Base, "--base-creds", Some("a:b:c")),
                (Role::Final, "--final-creds", None),
                (Role::Destination, "--dest-creds", None),
            ],
            &[file],
        )
        .unwrap();
        assert_eq!(
            basic(c.lookup("r:5000", Role::Base)),
            ("a".into(), "b:c".into())
        );
        assert_eq!(
            basic(c.lookup("r:5000", Role::Final)),
            ("file".into(), "pw".into())
        );
        assert!(c.lookup("other:5000", Role::Final).is_none());
    }

    #[test]
    fn auth_files_in_order_with_docker_hub_aliases_and_identity_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(
            dir.path(),
            "first.json",
            &format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
                b64("hub:secret")
            ),
        );
        let second = write(
            dir.path(),
            "second.json",
            &format!(
                r#"{{"auths":{{"docker.io":{{"auth":"{}"}},"https://quay.io":{{"identitytoken":"refresh-me"}}}}}}"#,
                b64("late:x")
            ),
        );
        let c = Credentials::load(
            [
                (Role::Base, "--base-creds", None),
                (Role::Final, "--final-creds", None),
                (Role::Destination, "--dest-creds", None),
            ],
            &[first, second, dir.path().join("missing.json")],
        )
        .unwrap();
        for alias in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(
                basic(c.lookup(alias, Role::Final)),
                ("hub".into(), "secret".into()),
                "{alias}"
            );
        }
        match c.lookup("quay.io", Role::Destination) {
            Some(Credential::IdentityToken(t)) => assert_eq!(t, "refresh-me"),
            _ => panic!("identity token expected"),
        }
    }

    #[test]
    fn a_broken_auth_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(dir.path(), "auth.json", "{not json");
        let err = Credentials::load(
            [
                (Role::Base, "--base-creds", None),
                (Role::Final, "--final-creds", None),
                (Role::Destination, "--dest-creds", None),
            ],
            std::slice::from_ref(&bad),
        )
        .err()
        .unwrap();
        assert!(
            format!("{err:#}").contains(bad.to_str().unwrap()),
            "{err:#}"
        );
    }

    #[test]
    fn credential_helpers_and_stores() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // A fake helper: answers for registry.test, says "not found" otherwise.
        let helper = dir.path().join("docker-credential-fake");
        std::fs::write(
            &helper,
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\ncase \"$server\" in\n  registry.test) echo '{\"ServerURL\":\"registry.test\",\"Username\":\"helper-user\",\"Secret\":\"helper-pw\"}' ;;\n  https://index.docker.io/v1/) echo '{\"ServerURL\":\"x\",\"Username\":\"<token>\",\"Secret\":\"hub-refresh\"}' ;;\n  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = write(
            dir.path(),
            "config.json",
            &format!(
                r#"{{"credHelpers":{{"registry.test":"fake"}},"credsStore":"fake","auths":{{"other.test":{{"auth":"{}"}}}}}}"#,
                b64("plain:pw")
            ),
        );
        let c = Credentials::load(
            [
                (Role::Base, "--base-creds", None),
                (Role::Final, "--final-creds", None),
                (Role::Destination, "--dest-creds", None),
            ],
            &[config],
        )
        .unwrap()
        .with_helper_dir(dir.path());
        assert_eq!(
            basic(c.lookup("registry.test", Role::Final)),
            ("helper-user".into(), "helper-pw".into())
        );
        match c.lookup("docker.io", Role::Final) {
            Some(Credential::IdentityToken(t)) => assert_eq!(t, "hub-refresh"),
            _ => panic!("identity token from the store expected"),
        }
        // The store knows nothing of other.test: auths answers.
        assert_eq!(
            basic(c.lookup("other.test", Role::Final)),
            ("plain".into(), "pw".into())
        );
        assert!(c.lookup("nowhere.test", Role::Final).is_none());
    }

    #[test]
    fn normalises_keys() {
        assert_eq!(
            normalise_registry("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(
            normalise_registry("http://r.example:5000/v2/"),
            "r.example:5000"
        );
        assert_eq!(normalise_registry("quay.io"), "quay.io");
    }

    #[test]
    fn flag_without_password_and_no_terminal() {
        // Test runs have no terminal on stdin.
        if std::io::stdin().is_terminal() {
            return;
        }
        let err = parse_flag("--dest-creds", "user")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--dest-creds"), "{err}");
    }
}
