//! `exec`: a command run with the credential where today's upload tools
//! look for one, and the credential burnt afterwards, whatever happened.

use std::ffi::OsString;
use std::process::Command;

use crate::interrupts::Interrupts;

/// The environment of the command: the credential for twine, uv, pdm,
/// maturin and cargo, and the upload URL for the Python tools, so that
/// `exec --upload-url URL -- uv publish` needs the URL once.
pub fn variables(
    credential: &str,
    upload_url: &str,
    cargo_registry: Option<&str>,
) -> Vec<(String, String)> {
    let mut variables: Vec<(String, String)> = [
        ("TWINE_USERNAME", "__token__"),
        ("TWINE_PASSWORD", credential),
        ("TWINE_REPOSITORY_URL", upload_url),
        ("UV_PUBLISH_TOKEN", credential),
        ("UV_PUBLISH_URL", upload_url),
        ("PDM_PUBLISH_USERNAME", "__token__"),
        ("PDM_PUBLISH_PASSWORD", credential),
        ("PDM_PUBLISH_REPO", upload_url),
        ("MATURIN_PYPI_TOKEN", credential),
        ("MATURIN_REPOSITORY_URL", upload_url),
        ("CARGO_REGISTRY_TOKEN", credential),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    if let Some(registry) = cargo_registry {
        variables.push((cargo_token_variable(registry), credential.to_owned()));
    }
    variables
}

/// `CARGO_REGISTRIES_<NAME>_TOKEN`, the name upper-cased with `-` as `_`,
/// as cargo reads it.
fn cargo_token_variable(registry: &str) -> String {
    format!(
        "CARGO_REGISTRIES_{}_TOKEN",
        registry.to_ascii_uppercase().replace('-', "_")
    )
}

/// Runs `command` with `variables` added to this process's environment,
/// passing it the signals `interrupts` catches, and answers its exit status
/// as a shell would: its code, 128 + the signal that ended it, or 127 when
/// it could not be started. `None` when a signal came before it started.
pub fn run(
    command: &[OsString],
    variables: &[(String, String)],
    interrupts: &Interrupts,
) -> Option<u8> {
    let (program, args) = command.split_first().expect("clap requires a command");
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(variables.iter().map(|(n, v)| (n, v)));
    let waited = interrupts
        .spawn(&mut command)?
        .and_then(|mut child| child.wait());
    interrupts.ended();
    let status = match waited {
        Ok(status) => status,
        Err(e) => {
            eprintln!("trustpub-token: running {}: {e}", program.to_string_lossy());
            return Some(127);
        }
    };
    Some(exit_code(status))
}

/// A shell's `$?` for `status`.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code & 0xff).unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return u8::try_from(128 + signal).unwrap_or(1);
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_reads_the_registry_token_by_the_upper_cased_name() {
        assert_eq!(
            cargo_token_variable("acme-crates"),
            "CARGO_REGISTRIES_ACME_CRATES_TOKEN"
        );
        let variables = variables("c", "https://u.example/", Some("acme"));
        assert!(variables.contains(&("CARGO_REGISTRIES_ACME_TOKEN".into(), "c".into())));
    }
}
