//! The user profiles of the scanned system, as the system knows them: local users from
//! `/etc/passwd` (people, not system accounts); domain users (SSSD, Winbind, FreeIPA),
//! who are not in `passwd`, from the home templates their configuration gives
//! (`home_templates.rs`) and from the layouts domain-joined PCs use
//! (`/home/<domain>/<user>`, `/home/<user>@<domain>`) or SSSD's cache of them
//! (`sssd_cache.rs`, read without the daemon); and every other folder under
//! `/home`, so that logged-off users are scanned too. A folder that holds other
//! people's homes (`/home/school.local`) is never taken for a user.

pub mod home_templates;
pub mod sssd_cache;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::SystemTime;

use crate::scan::fsread::{read_bounded, read_text_lossy};
use crate::scan::root::ScanRoot;
use home_templates::{Bindings, Dialect, DomainConfig, HomeLayout};

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
    /// When the profile was last used, as far as the files tell (see [`stamp_last_used`]).
    pub last_used: Option<SystemTime>,
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
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Folders listed per level of a home template; homes found per template.
const MAX_ENTRIES_PER_FOLDER: usize = 100_000;
const MAX_HOMES_PER_TEMPLATE: usize = 100_000;

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
                        profile(entry.name, entry.home, Some(entry.uid)),
                    );
                }
            }
        }
        Err(error) => profiles
            .problems
            .push(format!("/etc/passwd cannot be read: {error}")),
    }

    let (templates, mut domains) = read_domain_config(root, &mut profiles.problems);
    // Folders that hold homes: never a user themselves.
    let mut containers: BTreeSet<String> = BTreeSet::new();
    for user in read_sssd_caches(root, &mut profiles.problems) {
        if !root.path(&user.home).is_dir() || by_home.contains_key(&user.home) {
            continue;
        }
        if !domains
            .iter()
            .any(|known| known.eq_ignore_ascii_case(&user.domain))
        {
            domains.push(user.domain.clone());
        }
        mark_ancestors(&mut containers, &user.home);
        let name = if user.name.contains('@') {
            user.name
        } else {
            format!("{}@{}", user.name, user.domain)
        };
        if let Some(uid) = user.uid {
            profiles.names_by_uid.insert(uid, name.clone());
        }
        by_home.insert(user.home.clone(), profile(name, user.home, user.uid));
    }
    for (template, dialect) in &templates {
        let layout = match HomeLayout::parse(&template.template, *dialect) {
            Ok(layout) => layout,
            Err(error) => {
                profiles.problems.push(format!(
                    "home template `{}` ({}) {error}",
                    template.template, template.origin
                ));
                continue;
            }
        };
        let homes = find_homes(
            root,
            &layout,
            &domains,
            &mut profiles.problems,
            &template.origin,
        );
        for (home, mut bindings) in homes {
            if bindings.domain.is_none() {
                bindings.domain.clone_from(&template.domain);
            }
            let Some(name) = bindings.user_name() else {
                continue;
            };
            // A local user's home is never a folder of domain homes.
            let inside_local_home = Path::new(&home)
                .ancestors()
                .skip(1)
                .any(|folder| by_home.contains_key(folder.to_string_lossy().as_ref()));
            if inside_local_home {
                continue;
            }
            mark_ancestors(&mut containers, &home);
            by_home
                .entry(home.clone())
                .or_insert_with(|| profile(name, home, None));
        }
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
                if by_home.contains_key(&home) {
                    continue;
                }
                let known_domain = domains
                    .iter()
                    .any(|domain| domain.eq_ignore_ascii_case(&name));
                if containers.contains(&home)
                    || known_domain
                    || looks_like_container(&name, &entry.path())
                {
                    // `/home/<domain>/<user>`: each folder inside is a domain user's home.
                    for (user, user_home) in homes_in_container(&entry.path(), &home) {
                        by_home
                            .entry(user_home.clone())
                            .or_insert_with(|| profile(format!("{user}@{name}"), user_home, None));
                    }
                    continue;
                }
                by_home.insert(home.clone(), profile(name, home, None));
            }
        }
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => profiles
            .problems
            .push(format!("/home cannot be listed: {error}")),
        Err(_) => {}
    }
    by_home.retain(|home, _| !containers.contains(home));
    profiles.users = by_home.into_values().collect();
    profiles
}

/// Every folder above a home holds homes.
fn mark_ancestors(containers: &mut BTreeSet<String>, home: &str) {
    for folder in Path::new(home).ancestors().skip(1) {
        containers.insert(folder.to_string_lossy().into_owned());
    }
}

const SSSD_CACHE_DIR: &str = "/var/lib/sss/db";
const MAX_SSSD_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// The users of every `cache_<domain>.ldb` SSSD keeps.
fn read_sssd_caches(root: &ScanRoot, problems: &mut Vec<String>) -> Vec<sssd_cache::CachedUser> {
    let Ok(entries) = std::fs::read_dir(root.path(SSSD_CACHE_DIR)) else {
        return Vec::new();
    };
    let mut files: Vec<String> = entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("cache_") && name.ends_with(".ldb"))
        .collect();
    files.sort();
    let mut users = Vec::new();
    for name in files {
        let shown = format!("{SSSD_CACHE_DIR}/{name}");
        let bytes = match read_bounded(&root.path(&shown), MAX_SSSD_CACHE_BYTES) {
            Ok((_, true)) => {
                problems.push(format!(
                    "SSSD cache {shown} is larger than {} MB, not read",
                    MAX_SSSD_CACHE_BYTES >> 20
                ));
                continue;
            }
            Ok((bytes, false)) => bytes,
            Err(error) => {
                problems.push(format!("SSSD cache {shown} cannot be read: {error}"));
                continue;
            }
        };
        match sssd_cache::parse_sssd_cache(&bytes) {
            Ok(contents) => {
                if let Some(error) = contents.error {
                    problems.push(format!("SSSD cache {shown}: {error}"));
                }
                users.extend(contents.users);
            }
            Err(error) => problems.push(format!("SSSD cache {shown}: {error}")),
        }
    }
    users
}

fn profile(name: String, home: String, uid: Option<u32>) -> UserProfile {
    UserProfile {
        name,
        home,
        uid,
        sid: None,
        loaded: false,
        last_used: None,
    }
}

/// Files a Linux session touches, relative to the home; the newest modification time
/// among them and the home itself is when the profile was last used.
const SESSION_TRACES: &[&str] = &[
    ".cache",
    ".config",
    ".local/share/recently-used.xbel",
    ".xsession-errors",
    ".bash_history",
    ".ICEauthority",
];

/// Sets each profile's `last_used`: on Windows the scan's time for a logged-on profile,
/// else `NTUSER.DAT`'s modification time (Windows writes the hive at log-off); on
/// Linux the newest of the home's and its session files' modification times.
pub fn stamp_last_used(root: &ScanRoot, profiles: &mut Profiles, windows: bool) {
    let now = SystemTime::now();
    for user in &mut profiles.users {
        user.last_used = if windows {
            if user.loaded && root.is_live() {
                Some(now)
            } else {
                let home = user.home.trim_end_matches('\\');
                modified(&root.windows_path(&format!("{home}\\NTUSER.DAT")))
                    .or_else(|| modified(&root.windows_path(home)))
            }
        } else {
            std::iter::once(String::new())
                .chain(SESSION_TRACES.iter().map(|trace| format!("/{trace}")))
                .filter_map(|trace| modified(&root.path(format!("{}{trace}", user.home))))
                .max()
        };
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::symlink_metadata(path)
        .and_then(|metadata| metadata.modified())
        .ok()
}

/// The files SSSD and Winbind are configured by.
const SSSD_CONF: &str = "/etc/sssd/sssd.conf";
const SSSD_CONF_DIR: &str = "/etc/sssd/conf.d";
const SMB_CONF: &str = "/etc/samba/smb.conf";

/// A home template with how its variables read.
type ConfiguredTemplate = (home_templates::HomeTemplate, Dialect);

/// The configured home templates, and the domain names the configuration gives.
fn read_domain_config(
    root: &ScanRoot,
    problems: &mut Vec<String>,
) -> (Vec<ConfiguredTemplate>, Vec<String>) {
    let mut sssd = DomainConfig::default();
    for file in sssd_files(root) {
        if let Some(text) = read_config(root, &file, problems) {
            home_templates::parse_sssd_conf(&text, &file, &mut sssd);
        }
    }
    let mut samba = DomainConfig::default();
    if let Some(text) = read_config(root, SMB_CONF, problems) {
        home_templates::parse_smb_conf(&text, SMB_CONF, &mut samba);
    }
    let mut domains = sssd.domains;
    domains.extend(samba.domains);
    let templates = sssd
        .templates
        .into_iter()
        .map(|template| (template, Dialect::Sssd))
        .chain(
            samba
                .templates
                .into_iter()
                .map(|template| (template, Dialect::Samba)),
        )
        .collect();
    (templates, domains)
}

fn sssd_files(root: &ScanRoot) -> Vec<String> {
    let mut files = vec![SSSD_CONF.to_string()];
    if let Ok(entries) = std::fs::read_dir(root.path(SSSD_CONF_DIR)) {
        let mut extra: Vec<String> = entries
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".conf"))
            .map(|name| format!("{SSSD_CONF_DIR}/{name}"))
            .collect();
        extra.sort();
        files.extend(extra);
    }
    files
}

fn read_config(root: &ScanRoot, file: &str, problems: &mut Vec<String>) -> Option<String> {
    match read_text_lossy(&root.path(file), MAX_CONFIG_BYTES) {
        Ok(read) => Some(read.text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            problems.push(format!("{file} cannot be read: {error}"));
            None
        }
    }
}

/// The homes a template describes: a walk from its fixed prefix, one level per
/// remaining component, never following symbolic links below the prefix.
/// A folder bound to the domain variable must be a domain the configuration names, or,
/// when it names none, look like a folder of homes.
fn find_homes(
    root: &ScanRoot,
    layout: &HomeLayout,
    domains: &[String],
    problems: &mut Vec<String>,
    origin: &str,
) -> Vec<(String, Bindings)> {
    let prefix = layout.fixed_prefix();
    let fixed = layout
        .components
        .iter()
        .take_while(|component| matches!(component.as_slice(), [home_templates::Piece::Text(_)]))
        .count();
    let start = root.path(&prefix);
    if let Err(problem) = stays_inside_root(root, &start) {
        problems.push(format!(
            "home template folder {prefix} ({origin}) {problem}"
        ));
        return Vec::new();
    }
    if !start.is_dir() {
        return Vec::new();
    }
    let shown_prefix = prefix.trim_end_matches('/').to_string();
    let mut frontier = vec![(shown_prefix, start, Bindings::default())];
    for index in fixed..layout.components.len() {
        let mut next = Vec::new();
        for (shown, local, bindings) in &frontier {
            let Ok(entries) = std::fs::read_dir(local) else {
                continue;
            };
            for entry in entries.flatten().take(MAX_ENTRIES_PER_FOLDER) {
                let is_dir = entry.file_type().map(|kind| kind.is_dir()).unwrap_or(false);
                if !is_dir {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(found) = layout.match_name(index, &name, bindings) else {
                    continue;
                };
                let binds_domain = bindings.domain.is_none() && found.domain.is_some();
                if binds_domain {
                    let domain = found.domain.as_deref().unwrap_or_default();
                    let known = if domains.is_empty() {
                        name != domain || looks_like_container(&name, &entry.path())
                    } else {
                        domains
                            .iter()
                            .any(|known| known.eq_ignore_ascii_case(domain))
                    };
                    if !known {
                        continue;
                    }
                }
                next.push((format!("{shown}/{name}"), entry.path(), found));
            }
        }
        if next.len() > MAX_HOMES_PER_TEMPLATE {
            problems.push(format!(
                "home template ({origin}): more than {MAX_HOMES_PER_TEMPLATE} folders match; the rest were not scanned"
            ));
            next.truncate(MAX_HOMES_PER_TEMPLATE);
        }
        frontier = next;
    }
    frontier
        .into_iter()
        .map(|(shown, _, bindings)| (shown, bindings))
        .collect()
}

/// A folder a template starts in must stay inside the scanned root once its symbolic
/// links are resolved, and must not be a loop of links.
fn stays_inside_root(root: &ScanRoot, local: &Path) -> Result<(), String> {
    let resolved = match local.canonicalize() {
        Ok(resolved) => resolved,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) if error.raw_os_error() == Some(LOOP_ERRNO) => {
            return Err("is a loop of symbolic links".into());
        }
        Err(error) => return Err(format!("cannot be resolved: {error}")),
    };
    if root.is_live() {
        return Ok(());
    }
    let image = root
        .root()
        .canonicalize()
        .unwrap_or_else(|_| root.root().to_path_buf());
    if resolved.starts_with(&image) {
        Ok(())
    } else {
        Err(format!(
            "leads outside the scanned root (to {})",
            resolved.display()
        ))
    }
}

/// ELOOP on Linux.
const LOOP_ERRNO: i32 = 40;

/// Whether a folder directly under `/home` holds homes rather than being one: a dotted
/// name (a DNS domain), nothing of its own that a home has (no dot-files), and at
/// least one folder inside that does look like a home.
fn looks_like_container(name: &str, local: &Path) -> bool {
    if !name.contains('.') || name.contains('@') || name.starts_with('.') {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(local) else {
        return false;
    };
    let mut has_home_inside = false;
    for entry in entries.flatten().take(MAX_ENTRIES_PER_FOLDER) {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        if entry_name.starts_with('.') {
            return false;
        }
        let is_dir = entry.file_type().map(|kind| kind.is_dir()).unwrap_or(false);
        if is_dir && !has_home_inside {
            has_home_inside = looks_like_home(&entry.path());
        }
    }
    has_home_inside
}

fn looks_like_home(local: &Path) -> bool {
    std::fs::read_dir(local)
        .map(|entries| {
            entries
                .flatten()
                .take(1000)
                .any(|entry| entry.file_name().to_string_lossy().starts_with('.'))
        })
        .unwrap_or(false)
}

/// The homes inside a container: (user, home as a path of the scanned system).
fn homes_in_container(local: &Path, shown: &str) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(local) else {
        return Vec::new();
    };
    entries
        .flatten()
        .take(MAX_ENTRIES_PER_FOLDER)
        .filter(|entry| entry.file_type().map(|kind| kind.is_dir()).unwrap_or(false))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .map(|name| {
            let home = format!("{shown}/{name}");
            (name, home)
        })
        .collect()
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
