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
/// placeholder when the secret is not shown).
pub fn install_commands(server_url: &str, secret: &str) -> Vec<InstallCommand> {
    let version = AGENT_VERSION;
    vec![
        InstallCommand {
            title: "Windows (MSI, Group Policy / msiexec)",
            command: format!(
                "msiexec /i sverka-agent.msi /qn SERVER_URL=\"{server_url}\" ENROLL_SECRET=\"{secret}\""
            ),
        },
        InstallCommand {
            title: "Debian, Astra Linux, Ubuntu (deb)",
            command: format!(
                "sudo SVERKA_SERVER_URL='{server_url}' SVERKA_ENROLL_SECRET='{secret}' apt install ./sverka-agent_{version}_amd64.deb"
            ),
        },
        InstallCommand {
            title: "RED OS, ALT Linux, ROSA (rpm)",
            command: format!(
                "sudo SVERKA_SERVER_URL='{server_url}' SVERKA_ENROLL_SECRET='{secret}' dnf install ./sverka-agent-{version}-1.x86_64.rpm"
            ),
        },
        InstallCommand {
            title: "An installed agent",
            command: format!(
                "sudo SVERKA_ENROLL_SECRET='{secret}' sverka-agent enroll --server '{server_url}'"
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
                .starts_with("msiexec /i sverka-agent.msi /qn")
        );
        for command in &commands {
            assert!(
                command.command.contains("https://sverka.example"),
                "{command:?}"
            );
            assert!(command.command.contains("7.abc"), "{command:?}");
        }
    }
}
