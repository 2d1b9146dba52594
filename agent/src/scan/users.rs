//! The user profiles of the scanned system: from `/etc/passwd` (people, not system
//! accounts) and from every folder under `/home`, so that directory-service users who
//! are not in `passwd` and users who are logged off are scanned too.

use std::collections::BTreeMap;

use crate::scan::fsread::read_text_lossy;
use crate::scan::root::ScanRoot;

/// A person's profile on the scanned system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub name: String,
    /// The home folder as a path of the scanned system (`/home/anna`, `C:\\Users\\anna`).
    pub home: String,
    pub uid: Option<u32>,
    /// Windows: the profile's security identifier, from `ProfileList`.
    pub sid: Option<String>,
    /// Windows: whether the profile's hive is loaded under `HKEY_USERS` (logged on).
    pub loaded: bool,
}

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub home: String,
    pub shell: String,
}

/// Parses `/etc/passwd`. Malformed lines are skipped; their numbers are returned.
pub fn parse_passwd(text: &str) -> (Vec<PasswdEntry>, Vec<usize>) {
    let mut entries = Vec::new();
    let mut bad_lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with('+')
            || line.starts_with('-')
        {
            continue;
        }
        let fields: Vec<&str> = line.split(':').collect();
        let parsed = match fields.as_slice() {
            [name, _password, uid, _gid, _gecos, home, shell, ..] if !name.is_empty() => {
                uid.parse::<u32>().ok().map(|uid| PasswdEntry {
                    name: name.to_string(),
                    uid,
                    home: home.to_string(),
                    shell: shell.to_string(),
                })
            }
            _ => None,
        };
        match parsed {
            Some(entry) => entries.push(entry),
            None => bad_lines.push(index + 1),
        }
    }
    (entries, bad_lines)
}

/// Whether an account is a person's: root, or a regular uid with a real home.
fn is_person(entry: &PasswdEntry) -> bool {
    let regular = (1000..60000).contains(&entry.uid);
    let has_shell = !entry.shell.ends_with("nologin") && !entry.shell.ends_with("/false");
    (entry.uid == 0 && entry.home == "/root") || (regular && has_shell && entry.home.len() > 1)
}

/// Profiles found on the scanned system, plus the problems met while finding them.
#[derive(Debug, Default)]
pub struct Profiles {
    pub users: Vec<UserProfile>,
    pub problems: Vec<String>,
    /// uid → user name, for naming the owners of processes.
    pub names_by_uid: BTreeMap<u32, String>,
    /// Windows: SID → user name, for naming the owners of processes.
    pub names_by_sid: BTreeMap<String, String>,
}

const MAX_PASSWD_BYTES: u64 = 16 * 1024 * 1024;

pub fn discover(root: &ScanRoot) -> Profiles {
    let mut profiles = Profiles::default();
    let mut by_home: BTreeMap<String, UserProfile> = BTreeMap::new();
    let passwd_path = root.path("/etc/passwd");
    match read_text_lossy(&passwd_path, MAX_PASSWD_BYTES) {
        Ok(passwd) => {
            let (entries, bad_lines) = parse_passwd(&passwd.text);
            if !bad_lines.is_empty() {
                profiles.problems.push(format!(
                    "/etc/passwd: {} malformed line(s) skipped (first: line {})",
                    bad_lines.len(),
                    bad_lines[0]
                ));
            }
            for entry in entries {
                profiles.names_by_uid.insert(entry.uid, entry.name.clone());
                if is_person(&entry) && root.path(&entry.home).is_dir() {
                    by_home.insert(
                        entry.home.clone(),
                        UserProfile {
                            name: entry.name,
                            home: entry.home,
                            uid: Some(entry.uid),
                            sid: None,
                            loaded: false,
                        },
                    );
                }
            }
        }
        Err(error) => profiles
            .problems
            .push(format!("/etc/passwd cannot be read: {error}")),
    }
    match std::fs::read_dir(root.path("/home")) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let is_dir = entry.file_type().map(|kind| kind.is_dir()).unwrap_or(false);
                if !is_dir {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                let home = format!("/home/{name}");
                by_home.entry(home.clone()).or_insert(UserProfile {
                    name,
                    home,
                    uid: None,
                    sid: None,
                    loaded: false,
                });
            }
        }
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => profiles
            .problems
            .push(format!("/home cannot be listed: {error}")),
        Err(_) => {}
    }
    profiles.users = by_home.into_values().collect();
    profiles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_are_parsed_and_bad_ones_counted() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                    anna:x:1000:1000:Анна,,,:/home/anna:/bin/bash\n\
                    broken line\n\
                    boris:x:notanumber:1:::\n\
                    +nis\n";
        let (entries, bad) = parse_passwd(text);
        let names: Vec<&str> = entries.iter().map(|entry| entry.name.as_str()).collect();
        assert_eq!(names, vec!["root", "daemon", "anna"]);
        assert_eq!(bad, vec![4, 5]);
        assert!(is_person(&entries[0]));
        assert!(!is_person(&entries[1]));
        assert!(is_person(&entries[2]));
    }
}
