//! Where domain users' homes are, from what SSSD and Winbind leave on disk: the home
//! templates of `sssd.conf` (`override_homedir`, `fallback_homedir`, with
//! `homedir_substring`) and of `smb.conf` (`template homedir`), the domains both name,
//! and the layouts domain-joined PCs use when nothing is configured
//! (`/home/<domain>/<user>`, `/home/<user>@<domain>`).
//!
//! Everything here is pure: [`parse_sssd_conf`] and [`parse_smb_conf`] read text,
//! [`HomeLayout::parse`] compiles a template, [`HomeLayout::match_name`] tells whether
//! a folder name fits one component of it and what the variables were.

/// A home template as configured, and where it came from (`/etc/sssd/sssd.conf
/// [domain/school.local] override_homedir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeTemplate {
    pub template: String,
    pub origin: String,
    /// The domain of the `[domain/...]` section it comes from (its `%d` is filled in).
    pub domain: Option<String>,
}

/// What the directory-service configuration says about homes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DomainConfig {
    pub templates: Vec<HomeTemplate>,
    /// Domain names (`school.local`, the Samba workgroup `SCHOOL`).
    pub domains: Vec<String>,
}

/// One `key = value` line of an INI file, with its section (`domain/school.local`).
fn ini_entries(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut entries = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            section = name.trim().to_string();
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            entries.push((
                section.clone(),
                key.trim().to_ascii_lowercase(),
                value.trim().to_string(),
            ));
        }
    }
    entries
}

/// Reads `sssd.conf` (or a file of `conf.d`): the domains, and each domain's (or the
/// `[nss]` section's) home templates, `%d` filled in where the domain is known and
/// `%H` replaced by `homedir_substring` (default `/home`).
pub fn parse_sssd_conf(text: &str, file: &str, config: &mut DomainConfig) {
    let entries = ini_entries(text);
    let substring_of = |section: &str| {
        entries
            .iter()
            .find(|(entry_section, key, _)| entry_section == section && key == "homedir_substring")
            .or_else(|| {
                entries.iter().find(|(entry_section, key, _)| {
                    entry_section == "nss" && key == "homedir_substring"
                })
            })
            .map(|(_, _, value)| value.trim_end_matches('/').to_string())
            .unwrap_or_else(|| "/home".to_string())
    };
    for (section, key, value) in &entries {
        if section == "sssd" && key == "domains" {
            for domain in value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
            {
                push_domain(config, domain);
            }
        }
        let domain = section.strip_prefix("domain/").map(str::trim);
        if let Some(domain) = domain {
            push_domain(config, domain);
        }
        if (key == "override_homedir" || key == "fallback_homedir")
            && (domain.is_some() || section == "nss")
        {
            let mut template = value.replace("%H", &substring_of(section));
            if let Some(domain) = domain {
                template = fill_domain(&template, domain);
            }
            config.templates.push(HomeTemplate {
                template,
                origin: format!("{file} [{section}] {key}"),
                domain: domain.map(str::to_string),
            });
        }
    }
}

/// Reads `smb.conf`: the workgroup and realm, and Winbind's `template homedir`
/// (Samba's default, `/home/%D/%U`, when Winbind is set up and no template is given).
pub fn parse_smb_conf(text: &str, file: &str, config: &mut DomainConfig) {
    let mut template = None;
    let mut winbind = false;
    for (section, key, value) in ini_entries(text) {
        if !section.eq_ignore_ascii_case("global") {
            continue;
        }
        match key.as_str() {
            "workgroup" | "realm" => push_domain(config, &value),
            "template homedir" => template = Some(value),
            "security" => {
                winbind |= value.eq_ignore_ascii_case("ads") || value.eq_ignore_ascii_case("domain")
            }
            _ if key.starts_with("idmap config") || key.starts_with("winbind") => winbind = true,
            _ => {}
        }
    }
    match template {
        Some(template) => config.templates.push(HomeTemplate {
            template,
            origin: format!("{file} [global] template homedir"),
            domain: None,
        }),
        None if winbind => config.templates.push(HomeTemplate {
            template: "/home/%D/%U".into(),
            origin: format!("{file}: Winbind's default template homedir"),
            domain: None,
        }),
        None => {}
    }
}

fn push_domain(config: &mut DomainConfig, domain: &str) {
    let domain = domain.trim();
    if !domain.is_empty()
        && !config
            .domains
            .iter()
            .any(|known| known.eq_ignore_ascii_case(domain))
    {
        config.domains.push(domain.to_string());
    }
}

/// Replaces the domain variables of a template (`%d`, Samba's `%D`) by a known domain.
fn fill_domain(template: &str, domain: &str) -> String {
    let mut filled = String::new();
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            filled.push(c);
            continue;
        }
        match chars.next() {
            Some('d') | Some('D') => filled.push_str(domain),
            Some(other) => {
                filled.push('%');
                filled.push(other);
            }
            None => filled.push('%'),
        }
    }
    filled
}

/// A variable of a home template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variable {
    /// `%u` (SSSD), `%U` (Samba): the login name.
    User,
    /// `%d` (SSSD), `%D` (Samba): the domain.
    Domain,
    /// `%f`: the fully qualified name, `user@domain`.
    Qualified,
    /// `%l`: the first letter of the login name.
    FirstLetter,
    /// `%U` (SSSD): the numeric uid.
    Uid,
}

/// A piece of one path component of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Var(Variable),
}

/// A compiled home template: its path components, each a list of pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeLayout {
    pub components: Vec<Vec<Piece>>,
}

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("is not an absolute path")]
    NotAbsolute,
    #[error("leads outside the scanned root (`..`)")]
    OutsideRoot,
    #[error("names no user (no %u, %U or %f)")]
    NoUser,
    #[error("uses %{0}, which cannot be resolved from the files on disk")]
    Unresolvable(char),
    #[error("is longer than {0} components")]
    TooDeep(usize),
}

const MAX_TEMPLATE_COMPONENTS: usize = 16;

/// Variables as read by SSSD (`%U` is the uid) or by Samba (`%U` is the user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sssd,
    Samba,
}

impl HomeLayout {
    pub fn parse(template: &str, dialect: Dialect) -> Result<HomeLayout, TemplateError> {
        if !template.starts_with('/') {
            return Err(TemplateError::NotAbsolute);
        }
        let mut components = Vec::new();
        for component in template
            .split('/')
            .filter(|part| !part.is_empty() && *part != ".")
        {
            if component == ".." {
                return Err(TemplateError::OutsideRoot);
            }
            components.push(parse_component(component, dialect)?);
        }
        if components.len() > MAX_TEMPLATE_COMPONENTS {
            return Err(TemplateError::TooDeep(MAX_TEMPLATE_COMPONENTS));
        }
        let names_user = components.iter().flatten().any(|piece| {
            matches!(
                piece,
                Piece::Var(Variable::User) | Piece::Var(Variable::Qualified)
            )
        });
        if !names_user {
            return Err(TemplateError::NoUser);
        }
        Ok(HomeLayout { components })
    }

    /// The leading components without variables: the folder the walk starts in.
    pub fn fixed_prefix(&self) -> String {
        let mut prefix = String::new();
        for component in &self.components {
            match component.as_slice() {
                [Piece::Text(text)] => {
                    prefix.push('/');
                    prefix.push_str(text);
                }
                _ => break,
            }
        }
        if prefix.is_empty() {
            "/".into()
        } else {
            prefix
        }
    }

    /// Matches a folder name against component `index`, adding to `bindings`; `None`
    /// when it does not fit (or contradicts what earlier components bound).
    pub fn match_name(&self, index: usize, name: &str, bindings: &Bindings) -> Option<Bindings> {
        let component = self.components.get(index)?;
        match_pieces(component, name, bindings.clone())
    }
}

fn parse_component(component: &str, dialect: Dialect) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = component.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        let variable = match (chars.next(), dialect) {
            (Some('%'), _) => {
                text.push('%');
                continue;
            }
            (Some('u'), _) => Variable::User,
            (Some('U'), Dialect::Samba) => Variable::User,
            (Some('U'), Dialect::Sssd) => Variable::Uid,
            (Some('d') | Some('D'), _) => Variable::Domain,
            (Some('f'), Dialect::Sssd) => Variable::Qualified,
            (Some('l'), Dialect::Sssd) => Variable::FirstLetter,
            (Some(other), _) => return Err(TemplateError::Unresolvable(other)),
            (None, _) => return Err(TemplateError::Unresolvable('%')),
        };
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(Piece::Var(variable));
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// What the variables of a template were for one home.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Bindings {
    pub user: Option<String>,
    pub domain: Option<String>,
    pub qualified: Option<String>,
    pub first_letter: Option<String>,
    pub uid: Option<String>,
}

impl Bindings {
    fn slot(&mut self, variable: Variable) -> &mut Option<String> {
        match variable {
            Variable::User => &mut self.user,
            Variable::Domain => &mut self.domain,
            Variable::Qualified => &mut self.qualified,
            Variable::FirstLetter => &mut self.first_letter,
            Variable::Uid => &mut self.uid,
        }
    }

    /// The user's name as the directory service gives it: `user@domain` when the
    /// domain is part of the layout, the login name otherwise.
    pub fn user_name(&self) -> Option<String> {
        if let Some(qualified) = &self.qualified {
            return Some(qualified.clone());
        }
        let user = self.user.as_ref()?;
        Some(match &self.domain {
            Some(domain) => format!("{user}@{domain}"),
            None => user.clone(),
        })
    }

    /// Whether the bound values agree with each other (`%l` is the first letter of
    /// `%u`, `%f` is `%u@%d`).
    fn consistent(&self) -> bool {
        if let (Some(letter), Some(user)) = (&self.first_letter, &self.user)
            && !user.to_lowercase().starts_with(&letter.to_lowercase())
        {
            return false;
        }
        if let (Some(qualified), Some(user)) = (&self.qualified, &self.user)
            && !qualified.starts_with(&format!("{user}@"))
        {
            return false;
        }
        true
    }
}

fn valid_value(variable: Variable, value: &str) -> bool {
    if value.is_empty() || value.starts_with('.') {
        return false;
    }
    match variable {
        Variable::User => !value.contains('@'),
        Variable::Domain => !value.contains('@'),
        Variable::Qualified => value
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && !domain.is_empty()),
        Variable::FirstLetter => value.chars().count() == 1,
        Variable::Uid => value.chars().all(|c| c.is_ascii_digit()),
    }
}

/// Matches `name` against pieces, trying every split (names are short).
fn match_pieces(pieces: &[Piece], name: &str, bindings: Bindings) -> Option<Bindings> {
    let Some((first, rest)) = pieces.split_first() else {
        return name.is_empty().then_some(bindings);
    };
    match first {
        Piece::Text(text) => {
            let tail = strip_prefix_ignoring_case(name, text)?;
            match_pieces(rest, tail, bindings)
        }
        Piece::Var(variable) => {
            let mut ends: Vec<usize> = name.char_indices().map(|(at, _)| at).skip(1).collect();
            ends.push(name.len());
            // The last variable of a component takes the rest of the name.
            if rest.is_empty() {
                ends.retain(|end| *end == name.len());
            }
            for end in ends {
                let value = &name[..end];
                if !valid_value(*variable, value) {
                    continue;
                }
                let mut next = bindings.clone();
                let slot = next.slot(*variable);
                if slot
                    .as_ref()
                    .is_some_and(|bound| !bound.eq_ignore_ascii_case(value))
                {
                    continue;
                }
                *slot = Some(value.to_string());
                if !next.consistent() {
                    continue;
                }
                if let Some(found) = match_pieces(rest, &name[end..], next) {
                    return Some(found);
                }
            }
            None
        }
    }
}

fn strip_prefix_ignoring_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &name[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sssd_conf_gives_domains_and_templates() {
        let text = "[sssd]\ndomains = school.local, ipa.school.ru\n\
                    [nss]\nhomedir_substring = /srv/homes\n\
                    [domain/school.local]\n# a comment\nfallback_homedir = /home/%u@%d\n\
                    override_homedir = %H/%d/%u\n\
                    [domain/ipa.school.ru]\nid_provider = ipa\n";
        let mut config = DomainConfig::default();
        parse_sssd_conf(text, "/etc/sssd/sssd.conf", &mut config);
        assert_eq!(config.domains, vec!["school.local", "ipa.school.ru"]);
        let templates: Vec<&str> = config
            .templates
            .iter()
            .map(|template| template.template.as_str())
            .collect();
        assert_eq!(
            templates,
            vec!["/home/%u@school.local", "/srv/homes/school.local/%u"]
        );
        assert!(
            config.templates[1]
                .origin
                .contains("[domain/school.local] override_homedir")
        );
    }

    #[test]
    fn smb_conf_gives_the_template_or_winbinds_default() {
        let mut config = DomainConfig::default();
        parse_smb_conf(
            "[global]\n   workgroup = SCHOOL\n   realm = SCHOOL.LOCAL\n   security = ADS\n   template homedir = /home/%D/%U\n[homes]\n",
            "/etc/samba/smb.conf",
            &mut config,
        );
        assert_eq!(config.domains, vec!["SCHOOL", "SCHOOL.LOCAL"]);
        assert_eq!(config.templates[0].template, "/home/%D/%U");
        let mut defaulted = DomainConfig::default();
        parse_smb_conf("[global]\nsecurity = ads\n", "smb.conf", &mut defaulted);
        assert_eq!(defaulted.templates[0].template, "/home/%D/%U");
        let mut plain = DomainConfig::default();
        parse_smb_conf("[global]\nworkgroup = WORKGROUP\n", "smb.conf", &mut plain);
        assert!(plain.templates.is_empty());
    }

    #[test]
    fn templates_compile_and_match_folder_names() {
        let layout = HomeLayout::parse("/home/%u@%d", Dialect::Sssd).unwrap();
        assert_eq!(layout.fixed_prefix(), "/home");
        let bound = layout
            .match_name(1, "ivanov.ii@school.local", &Bindings::default())
            .unwrap();
        assert_eq!(bound.user_name().as_deref(), Some("ivanov.ii@school.local"));
        assert!(layout.match_name(1, "anna", &Bindings::default()).is_none());

        let nested = HomeLayout::parse("/home/%D/%U", Dialect::Samba).unwrap();
        let domain = nested
            .match_name(1, "SCHOOL", &Bindings::default())
            .unwrap();
        let user = nested.match_name(2, "petrova", &domain).unwrap();
        assert_eq!(user.user_name().as_deref(), Some("petrova@SCHOOL"));

        let letters = HomeLayout::parse("/srv/homes/%l/%u", Dialect::Sssd).unwrap();
        let letter = letters.match_name(2, "p", &Bindings::default()).unwrap();
        assert!(letters.match_name(3, "petrova", &letter).is_some());
        assert!(letters.match_name(3, "ivanov", &letter).is_none());

        let fixed = HomeLayout::parse("/home/school.local/%u", Dialect::Sssd).unwrap();
        assert_eq!(fixed.fixed_prefix(), "/home/school.local");
        assert!(
            fixed
                .match_name(2, ".cache", &Bindings::default())
                .is_none()
        );
    }

    #[test]
    fn bad_templates_are_errors() {
        for (template, error) in [
            ("home/%u", TemplateError::NotAbsolute),
            ("/home/../../etc/%u", TemplateError::OutsideRoot),
            ("/home/shared", TemplateError::NoUser),
            ("/home/%o", TemplateError::Unresolvable('o')),
            ("/home/%u%", TemplateError::Unresolvable('%')),
        ] {
            assert_eq!(
                HomeLayout::parse(template, Dialect::Sssd),
                Err(error),
                "{template}"
            );
        }
        let deep = format!("{}/%u", "/a".repeat(20));
        assert!(matches!(
            HomeLayout::parse(&deep, Dialect::Sssd),
            Err(TemplateError::TooDeep(_))
        ));
    }
}
