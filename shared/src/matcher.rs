//! The catalog compiled for matching, and the one function that turns observations into
//! findings. The agent uses it after a scan; the collector will use the same code to
//! re-evaluate stored inventories when the catalog changes.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::catalog::{
    AppEntry, Catalog, PathPattern, Pattern, PeVersionRule, REGEX_PREFIX, UninstallRule, is_glob,
};
use crate::observation::{Observation, Observed, VersionInfo};
use crate::report::{Evidence, Finding, Scope, Strength};

/// A catalog hit: which application, and whether the rule only supports a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub app: usize,
    /// A supporting rule (the Teams Meeting Add-in) never makes a finding on its own.
    pub supporting: bool,
}

/// The catalog with every pattern compiled once.
#[derive(Debug)]
pub struct CatalogMatcher {
    catalog: Catalog,
    apps: Vec<CompiledApp>,
    /// Every `files` pattern's last component, for one quick test per walked file.
    file_names: GlobSet,
    exact_file_names: HashSet<String>,
    data_dirs: Vec<(usize, String)>,
}

#[derive(Debug, Default)]
struct CompiledApp {
    packages: Vec<Pattern>,
    flatpak: Vec<Pattern>,
    snap: Vec<Pattern>,
    desktop_entries: Vec<Pattern>,
    wm_classes: Vec<Pattern>,
    files: Vec<PathPattern>,
    processes: Vec<Pattern>,
    uninstall: Vec<CompiledUninstallRule>,
    appx: Vec<Pattern>,
    pe_version: Vec<CompiledPeVersionRule>,
    office_products: Vec<Pattern>,
    web_apps: Vec<Pattern>,
}

/// An uninstall rule with its patterns compiled; every field given must match.
#[derive(Debug)]
struct CompiledUninstallRule {
    key: Option<Pattern>,
    display_name: Option<Pattern>,
    publisher: Option<Pattern>,
    upgrade_code: Option<Pattern>,
    supporting: bool,
}

impl CompiledUninstallRule {
    fn compile(rule: &UninstallRule) -> CompiledUninstallRule {
        CompiledUninstallRule {
            key: compile_option(&rule.key),
            display_name: compile_option(&rule.display_name),
            publisher: compile_option(&rule.publisher),
            upgrade_code: compile_option(&rule.upgrade_code),
            supporting: rule.supporting,
        }
    }

    fn matches(
        &self,
        key_name: &str,
        display_name: &str,
        publisher: Option<&str>,
        upgrade_code: Option<&str>,
    ) -> bool {
        let given = [
            &self.key,
            &self.display_name,
            &self.publisher,
            &self.upgrade_code,
        ];
        given.iter().any(|pattern| pattern.is_some())
            && field_matches(&self.key, Some(key_name))
            && field_matches(&self.display_name, Some(display_name))
            && field_matches(&self.publisher, publisher)
            && field_matches(&self.upgrade_code, upgrade_code)
    }
}

/// A PE version rule with its patterns compiled; every field given must match.
#[derive(Debug)]
struct CompiledPeVersionRule {
    company_name: Option<Pattern>,
    product_name: Option<Pattern>,
    original_filename: Option<Pattern>,
    file_description: Option<Pattern>,
}

impl CompiledPeVersionRule {
    fn compile(rule: &PeVersionRule) -> CompiledPeVersionRule {
        CompiledPeVersionRule {
            company_name: compile_option(&rule.company_name),
            product_name: compile_option(&rule.product_name),
            original_filename: compile_option(&rule.original_filename),
            file_description: compile_option(&rule.file_description),
        }
    }

    fn matches(&self, info: &VersionInfo) -> bool {
        let given = [
            &self.company_name,
            &self.product_name,
            &self.original_filename,
            &self.file_description,
        ];
        given.iter().any(|pattern| pattern.is_some())
            && field_matches(&self.company_name, info.company_name.as_deref())
            && field_matches(&self.product_name, info.product_name.as_deref())
            && field_matches(&self.original_filename, info.original_filename.as_deref())
            && field_matches(&self.file_description, info.file_description.as_deref())
    }
}

fn compile_option(pattern: &Option<String>) -> Option<Pattern> {
    pattern
        .as_deref()
        .and_then(|pattern| Pattern::parse(pattern).ok())
}

/// A rule field that is not given matches anything; one that is given needs a value.
fn field_matches(pattern: &Option<Pattern>, value: Option<&str>) -> bool {
    match pattern {
        None => true,
        Some(pattern) => value.is_some_and(|value| pattern.matches(value.trim())),
    }
}

/// The host of a URL (`https://web.telegram.org/a/` → `web.telegram.org`), lower-case.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_and_port = authority.rsplit('@').next()?;
    let host = host_and_port.split(':').next()?.trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

impl CompiledApp {
    /// Whether a program path (a launcher's or a process's) is this application's: by
    /// its file name, or by its path tail.
    fn matches_program(&self, path: &str) -> bool {
        any_matches(&self.processes, base_name(path))
            || self.files.iter().any(|pattern| pattern.matches_path(path))
    }

    fn matches_version_info(&self, info: &Option<VersionInfo>) -> bool {
        info.as_ref()
            .is_some_and(|info| self.pe_version.iter().any(|rule| rule.matches(info)))
    }
}

fn compile_all(patterns: &[String]) -> Vec<Pattern> {
    // Patterns were validated when the catalog was loaded.
    patterns
        .iter()
        .filter_map(|pattern| Pattern::parse(pattern).ok())
        .collect()
}

fn any_matches(patterns: &[Pattern], candidate: &str) -> bool {
    patterns.iter().any(|pattern| pattern.matches(candidate))
}

/// The last component of a `/` or `\` separated path.
pub fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

impl CatalogMatcher {
    pub fn new(catalog: Catalog) -> CatalogMatcher {
        let mut file_names = GlobSetBuilder::new();
        let mut exact_file_names = HashSet::new();
        let mut data_dirs = Vec::new();
        let mut apps = Vec::with_capacity(catalog.apps.len());
        for (index, app) in catalog.apps.iter().enumerate() {
            let signatures = &app.signatures;
            for pattern in &signatures.files {
                let normalized = pattern.replace('\\', "/");
                let last = normalized.rsplit('/').next().unwrap_or(&normalized);
                if is_glob(last) {
                    let last = crate::catalog::folded(last);
                    if let Ok(glob) = GlobBuilder::new(&last).case_insensitive(true).build() {
                        file_names.add(glob);
                    }
                } else {
                    exact_file_names.insert(last.to_lowercase());
                }
            }
            for folder in &signatures.data_dirs {
                data_dirs.push((index, folder.trim_end_matches('/').to_string()));
            }
            // Flatpak and snap keep per-user data after the package is removed.
            for id in signatures.flatpak.iter().filter(|id| is_literal(id)) {
                data_dirs.push((index, format!(".var/app/{id}")));
            }
            for name in signatures.snap.iter().filter(|name| is_literal(name)) {
                data_dirs.push((index, format!("snap/{name}")));
            }
            apps.push(CompiledApp {
                packages: compile_all(&signatures.packages),
                flatpak: compile_all(&signatures.flatpak),
                snap: compile_all(&signatures.snap),
                desktop_entries: compile_all(&signatures.desktop_entries),
                wm_classes: compile_all(&signatures.wm_classes),
                files: signatures
                    .files
                    .iter()
                    .filter_map(|pattern| PathPattern::parse(pattern).ok())
                    .collect(),
                processes: compile_all(&signatures.processes),
                uninstall: signatures
                    .uninstall
                    .iter()
                    .map(CompiledUninstallRule::compile)
                    .collect(),
                appx: compile_all(&signatures.appx),
                pe_version: signatures
                    .pe_version
                    .iter()
                    .map(CompiledPeVersionRule::compile)
                    .collect(),
                office_products: compile_all(&signatures.office_products),
                web_apps: compile_all(&signatures.web_apps),
            });
        }
        CatalogMatcher {
            catalog,
            apps,
            file_names: file_names.build().unwrap_or_else(|_| GlobSet::empty()),
            exact_file_names,
            data_dirs,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Whether a file with this name could be a catalog program: the walkers ask this for
    /// every directory entry, so it is one set lookup and one glob-set test.
    pub fn wants_file_name(&self, file_name: &str) -> bool {
        let lowered;
        let key =
            if file_name.bytes().any(|byte| byte.is_ascii_uppercase()) || !file_name.is_ascii() {
                lowered = file_name.to_lowercase();
                lowered.as_str()
            } else {
                file_name
            };
        // `key` is lower-cased where it has capitals or is not ASCII, as the globs'
        // text is (globset folds only ASCII letters).
        self.exact_file_names.contains(key) || self.file_names.is_match(key)
    }

    /// Data folders (relative to a home) worth a look, with the application each belongs to.
    pub fn data_dirs(&self) -> impl Iterator<Item = (usize, &str)> {
        self.data_dirs
            .iter()
            .map(|(app, folder)| (*app, folder.as_str()))
    }

    /// The applications a Windows program of this file name (`TELEGRAM.EXE`, any case)
    /// belongs to, by the catalog's process names and the file names of its `files`
    /// patterns. With `cut`, the name is only the program name's start (Windows cuts
    /// the names of Prefetch files to 29 characters), and matches exact names that begin
    /// with it. Used for Prefetch entries, which name nothing else.
    pub fn apps_of_windows_program(&self, file_name: &str, cut: bool) -> Vec<usize> {
        let lowered = file_name.to_lowercase();
        let names =
            |pattern: &Pattern| pattern.matches(&lowered) || (cut && pattern.matches_cut(&lowered));
        self.apps
            .iter()
            .enumerate()
            .filter(|(_, app)| {
                app.processes.iter().any(names)
                    || app.files.iter().any(|pattern| names(pattern.file_name()))
            })
            .map(|(index, _)| index)
            .collect()
    }

    /// The applications an observation belongs to.
    pub fn hits_for(&self, observation: &Observation) -> Vec<Hit> {
        self.apps
            .iter()
            .enumerate()
            .filter_map(|(index, app)| {
                self.match_app(index, app, observation)
                    .map(|supporting| Hit {
                        app: index,
                        supporting,
                    })
            })
            .collect()
    }

    /// `Some(false)` for a hit, `Some(true)` for a hit of supporting rules only.
    fn match_app(
        &self,
        index: usize,
        app: &CompiledApp,
        observation: &Observation,
    ) -> Option<bool> {
        if let Observed::UninstallEntry {
            key_name,
            display_name,
            publisher,
            upgrade_code,
            ..
        } = &observation.observed
        {
            let mut supporting_only = None;
            for rule in &app.uninstall {
                if rule.matches(
                    key_name,
                    display_name,
                    publisher.as_deref(),
                    upgrade_code.as_deref(),
                ) {
                    if !rule.supporting {
                        return Some(false);
                    }
                    supporting_only = Some(true);
                }
            }
            return supporting_only;
        }
        self.matches_app(index, app, observation).then_some(false)
    }

    fn matches_app(&self, index: usize, app: &CompiledApp, observation: &Observation) -> bool {
        match &observation.observed {
            Observed::Package { name, .. } => any_matches(&app.packages, name),
            Observed::Flatpak { id, .. } => any_matches(&app.flatpak, id),
            Observed::Snap { name, .. } => any_matches(&app.snap, name),
            Observed::DesktopEntry {
                file_name,
                program,
                wm_class,
                ..
            } => {
                any_matches(&app.desktop_entries, file_name)
                    || wm_class
                        .as_deref()
                        .is_some_and(|class| any_matches(&app.wm_classes, class))
                    || program
                        .as_deref()
                        .is_some_and(|program| app.matches_program(program))
            }
            // A file is matched on its full path, or on its version resource.
            Observed::File { version_info, .. } => {
                observation
                    .path
                    .as_deref()
                    .is_some_and(|path| app.files.iter().any(|pattern| pattern.matches_path(path)))
                    || app.matches_version_info(version_info)
            }
            Observed::DataDir { relative_path } => self
                .data_dirs
                .iter()
                .any(|(app_index, folder)| *app_index == index && folder == relative_path),
            Observed::Process {
                name,
                executable,
                version_info,
                ..
            } => {
                any_matches(&app.processes, name)
                    || executable
                        .as_deref()
                        .is_some_and(|executable| app.matches_program(executable))
                    || app.matches_version_info(version_info)
            }
            // Handled by `match_app`, which knows supporting rules.
            Observed::UninstallEntry { .. } => false,
            Observed::AppxPackage { family_name, .. } => any_matches(&app.appx, family_name),
            Observed::OfficeProduct { product_id } => any_matches(&app.office_products, product_id),
            Observed::WebApp {
                start_url, scope, ..
            } => [Some(start_url), scope.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|url| url_host(url))
                .any(|host| any_matches(&app.web_apps, &host)),
        }
    }

    /// Groups the observations that hit the catalog into one finding per application,
    /// ordered banned first, then by id. Applications with only supporting evidence are
    /// left out.
    pub fn findings(&self, observations: &[Observation]) -> Vec<Finding> {
        let mut per_app: BTreeMap<usize, (bool, Vec<Evidence>)> = BTreeMap::new();
        for observation in observations {
            for hit in self.hits_for(observation) {
                let entry = per_app.entry(hit.app).or_insert((false, Vec::new()));
                entry.0 |= !hit.supporting;
                let evidence = evidence_of(observation);
                if !entry.1.contains(&evidence) {
                    entry.1.push(evidence);
                }
            }
        }
        let mut findings: Vec<Finding> = per_app
            .into_iter()
            .filter(|(_, (has_primary, _))| *has_primary)
            .filter_map(|(index, (_, evidence))| {
                let app = self.catalog.apps.get(index)?;
                Some(finding_of(app, evidence))
            })
            .collect();
        findings.sort_by(|left, right| {
            (left.status as u8, &left.app).cmp(&(right.status as u8, &right.app))
        });
        findings
    }
}

fn is_literal(pattern: &str) -> bool {
    !pattern.starts_with(REGEX_PREFIX) && !is_glob(pattern)
}

fn evidence_of(observation: &Observation) -> Evidence {
    Evidence {
        source: observation.observed.source_kind(),
        detail: observation.observed.describe(),
        path: observation.path.clone(),
        user: observation.user.clone(),
        scope: observation.scope,
        strength: observation.strength,
        version: observation.observed.version().map(str::to_string),
        profile_last_used: None,
        last_used: None,
        last_used_source: None,
    }
}

fn finding_of(app: &AppEntry, mut evidence: Vec<Evidence>) -> Finding {
    evidence.sort_by(|left, right| {
        right
            .strength
            .cmp(&left.strength)
            .then(left.source.cmp(&right.source))
            .then(left.path.cmp(&right.path))
    });
    let strength = evidence
        .iter()
        .map(|evidence| evidence.strength)
        .max()
        .unwrap_or(Strength::Trace);
    let users: BTreeSet<String> = evidence
        .iter()
        .filter(|evidence| evidence.scope == Scope::User)
        .filter_map(|evidence| evidence.user.clone())
        .collect();
    Finding {
        app: app.id.clone(),
        name: app.name.clone(),
        vendor: app.vendor.clone(),
        status: app.status,
        strength,
        users: users.into_iter().collect(),
        evidence,
        last_used: None,
        last_used_source: None,
    }
}

#[cfg(test)]
mod tests;
