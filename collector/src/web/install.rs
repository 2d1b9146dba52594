//! The install commands shown on a school's enrollment page, in one place so they
//! follow the packages (`packaging/`) when those change.

/// One way to install the agent: a title and the command to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallCommand {
    pub title: &'static str,
    pub command: String,
}

/// The agent's version the packages carry (the collector ships with the same one).
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Commands for a collector at `server_url` with the enrollment `secret` (or a
/// placeholder when the secret is not shown). The Linux packages read their settings
/// from `/etc/sverka/agent.env` (written first, readable by root only), the MSI from its
/// properties; a plain `http://` collector needs the agent's explicit consent.
pub fn install_commands(server_url: &str, secret: &str) -> Vec<InstallCommand> {
    let version = AGENT_VERSION;
    let plain_http = server_url.starts_with("http://");
    let msi_allow_http = if plain_http { " ALLOW_HTTP=1" } else { "" };
    let env_allow_http = if plain_http {
        "SVERKA_ALLOW_HTTP=true\\n"
    } else {
        ""
    };
    let cli_allow_http = if plain_http { " --allow-http" } else { "" };
    let agent_env = format!(
        "sudo install -D -m 0600 /dev/null /etc/sverka/agent.env && printf 'SVERKA_SERVER_URL={server_url}\\nSVERKA_ENROLL_SECRET={secret}\\n{env_allow_http}' | sudo tee /etc/sverka/agent.env >/dev/null"
    );
    vec![
        InstallCommand {
            title: "Windows (MSI, Group Policy / msiexec)",
            command: format!(
                "msiexec /i sverka-agent-{version}.msi /qn SERVER_URL=\"{server_url}\" ENROLL_SECRET=\"{secret}\"{msi_allow_http}"
            ),
        },
        InstallCommand {
            title: "Debian, Astra Linux, Ubuntu (deb)",
            command: format!("{agent_env} && sudo apt install ./sverka-agent_{version}_amd64.deb"),
        },
        InstallCommand {
            title: "RED OS, ALT Linux, ROSA (rpm)",
            command: format!(
                "{agent_env} && sudo dnf install ./sverka-agent-{version}-1.x86_64.rpm"
            ),
        },
        InstallCommand {
            title: "An installed agent",
            command: format!(
                "sudo SVERKA_ENROLL_SECRET='{secret}' sverka-agent enroll --server '{server_url}'{cli_allow_http}"
            ),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_carry_the_url_and_secret() {
        let commands = install_commands("https://sverka.example", "7.abc");
        assert_eq!(commands.len(), 4);
        assert!(
            commands[0]
                .command
                .starts_with(&format!("msiexec /i sverka-agent-{AGENT_VERSION}.msi /qn"))
        );
        assert!(commands[1].command.contains("/etc/sverka/agent.env"));
        assert!(!commands[1].command.contains("ALLOW_HTTP"));
        let plain = install_commands("http://10.0.0.5:8440", "7.abc");
        assert!(plain[0].command.ends_with(" ALLOW_HTTP=1"), "{plain:?}");
        assert!(
            plain[1].command.contains("SVERKA_ALLOW_HTTP=true"),
            "{plain:?}"
        );
        assert!(plain[3].command.ends_with(" --allow-http"), "{plain:?}");
        for command in &commands {
            assert!(
                command.command.contains("https://sverka.example"),
                "{command:?}"
            );
            assert!(command.command.contains("7.abc"), "{command:?}");
        }
    }
}
