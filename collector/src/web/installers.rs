//! The agent's installers, served from the folder `[dashboard] installers` names: the
//! enrollment page lists the MSI (x64, and x86 when there is one), deb and rpm found
//! there, and whoever may see a school's enrollment page downloads them. Right after a
//! secret is created, the page also offers each MSI with this school's settings
//! written into its Property table (`SERVER_URL`, `ENROLL_SECRET`, `ALLOW_HTTP` for a
//! plain-http collector), as `packaging/msi-with-settings.sh` does for Group Policy,
//! which cannot pass properties on a command line.
//!
//! Only files the folder lists are served, by a name of safe characters that must
//! equal a listed one (no path from the request reaches the file system); files are
//! streamed; every download is in the audit log. An MSI is edited in memory (the
//! compound file is rewritten), so one larger than [`MAX_EDITED_MSI`] is refused. The
//! edit removes an Authenticode signature, which a changed MSI would not match anyway.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

use super::auth::{CsrfForm, Viewer};
use super::pages::tree_permitting;
use super::scope::Action;
use super::{WebError, WebState};

/// The largest MSI written with settings (they are held in memory while edited).
pub const MAX_EDITED_MSI: u64 = 256 * 1024 * 1024;

/// What an installer is for, from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InstallerKind {
    MsiX64,
    MsiX86,
    Deb,
    Rpm,
}

impl InstallerKind {
    /// The kind of a file name the folder may serve; `None` for anything else.
    pub fn of(file_name: &str) -> Option<InstallerKind> {
        if !is_safe_name(file_name) || !file_name.starts_with("sverka-agent") {
            return None;
        }
        let lower = file_name.to_ascii_lowercase();
        let thirty_two_bit = ["x86.", "-x86-", "_x86", "i686", "i386", "win32"]
            .iter()
            .any(|mark| lower.contains(mark))
            && !lower.contains("x86_64");
        if lower.ends_with(".msi") {
            Some(if thirty_two_bit {
                InstallerKind::MsiX86
            } else {
                InstallerKind::MsiX64
            })
        } else if lower.ends_with(".deb") {
            Some(InstallerKind::Deb)
        } else if lower.ends_with(".rpm") {
            Some(InstallerKind::Rpm)
        } else {
            None
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            InstallerKind::MsiX64 => "Windows x64 (MSI)",
            InstallerKind::MsiX86 => "Windows x86, 32-bit (MSI)",
            InstallerKind::Deb => "Debian, Astra Linux, Ubuntu (deb)",
            InstallerKind::Rpm => "RED OS, ALT Linux, ROSA (rpm)",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            InstallerKind::MsiX64 | InstallerKind::MsiX86 => "application/x-msi",
            InstallerKind::Deb => "application/vnd.debian.binary-package",
            InstallerKind::Rpm => "application/x-rpm",
        }
    }

    fn is_msi(self) -> bool {
        matches!(self, InstallerKind::MsiX64 | InstallerKind::MsiX86)
    }
}

/// A name of ASCII letters, digits, `.`, `_`, `-` and `+`, not starting with a dot,
/// at most 200 characters: never a path.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "._-+".contains(character))
}

/// One installer in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installer {
    pub file_name: String,
    pub kind: InstallerKind,
    pub size: u64,
}

/// The installers in `folder`, by kind then name; an unreadable folder is logged and
/// lists none.
pub async fn list(folder: &std::path::Path) -> Vec<Installer> {
    let mut found = Vec::new();
    let mut entries = match tokio::fs::read_dir(folder).await {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(
                "cannot list the installers in {}: {error}",
                folder.display()
            );
            return found;
        }
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some(kind) = InstallerKind::of(&name) else {
            continue;
        };
        match tokio::fs::metadata(entry.path()).await {
            Ok(metadata) if metadata.is_file() => found.push(Installer {
                file_name: name,
                kind,
                size: metadata.len(),
            }),
            _ => continue,
        }
    }
    found.sort_by(|a, b| (a.kind, &a.file_name).cmp(&(b.kind, &b.file_name)));
    found
}

/// Why an MSI could not be written with settings.
#[derive(Debug, thiserror::Error)]
pub enum MsiSettingsError {
    #[error("{0}: an empty value, or one with a tab or a line break")]
    BadValue(&'static str),
    #[error("the MSI cannot be edited: {0}")]
    Package(#[from] std::io::Error),
}

/// `msi` with `settings` (property, value) in its Property table, earlier values of
/// the same properties replaced.
pub fn msi_with_settings(
    msi: Vec<u8>,
    settings: &[(&'static str, String)],
) -> Result<Vec<u8>, MsiSettingsError> {
    for (name, value) in settings {
        if value.is_empty() || value.contains(['\t', '\n', '\r']) {
            return Err(MsiSettingsError::BadValue(name));
        }
    }
    let mut package = msi::Package::open(Cursor::new(msi))?;
    package.remove_digital_signature()?;
    for (name, _) in settings {
        package.delete_rows(
            msi::Delete::from("Property")
                .with(msi::Expr::col("Property").eq(msi::Expr::string(*name))),
        )?;
    }
    let rows = settings
        .iter()
        .map(|(name, value)| vec![msi::Value::from(*name), msi::Value::from(value.as_str())])
        .collect();
    package.insert_rows(msi::Insert::into("Property").rows(rows))?;
    package.flush()?;
    Ok(package.into_inner()?.into_inner())
}

/// The installers section of the enrollment page (nothing when no folder is set).
/// With `new_secret`, each MSI is also offered with the school's settings.
pub async fn section(
    state: &WebState,
    viewer: &Viewer,
    id: i64,
    new_secret: Option<&str>,
) -> Markup {
    let Some(folder) = &state.installers else {
        return html! {};
    };
    let officer = viewer.lang.officer();
    let installers = list(folder).await;
    html! {
        h2 #installers { (officer.installers) }
        @if installers.is_empty() {
            p.empty #no-installers { (officer.no_installers) }
        } @else {
            ul.installers {
                @for installer in &installers {
                    li {
                        (installer.kind.title()) ": "
                        a.installer href={ "/org/" (id) "/installers/" (installer.file_name) } download {
                            (installer.file_name)
                        }
                        " (" (megabytes(installer.size, viewer.lang)) ")"
                        @if let (Some(secret), true) = (new_secret, installer.kind.is_msi()) {
                            form.inline method="post" action={ "/org/" (id) "/installers/" (installer.file_name) } {
                                input type="hidden" name="csrf" value=(viewer.csrf_token);
                                input type="hidden" name="secret" value=(secret);
                                button.msi-with-settings type="submit" { (officer.msi_with_settings) }
                            }
                        }
                    }
                }
            }
            p { (officer.installers_hint) }
        }
    }
}

fn megabytes(size: u64, lang: super::i18n::Lang) -> String {
    let text = format!("{:.1} MB", size as f64 / 1_048_576.0);
    match lang {
        super::i18n::Lang::Ru => text.replace('.', ",").replace("MB", "МБ"),
        super::i18n::Lang::En => text,
    }
}

/// The installer `file` of the folder, if the folder lists it.
async fn find(
    state: &WebState,
    viewer: &Viewer,
    file: &str,
) -> Result<(PathBuf, Installer), WebError> {
    let folder = state
        .installers
        .as_ref()
        .ok_or_else(|| WebError::not_found(viewer))?;
    if !is_safe_name(file) {
        return Err(WebError::not_found(viewer));
    }
    let installer = list(folder)
        .await
        .into_iter()
        .find(|installer| installer.file_name == file)
        .ok_or_else(|| WebError::not_found(viewer))?;
    Ok((folder.join(&installer.file_name), installer))
}

fn attachment(installer: &Installer, length: u64) -> [(header::HeaderName, String); 3] {
    [
        (
            header::CONTENT_TYPE,
            installer.kind.content_type().to_string(),
        ),
        (header::CONTENT_LENGTH, length.to_string()),
        (
            header::CONTENT_DISPOSITION,
            super::exports::content_disposition(&installer.file_name),
        ),
    ]
}

/// `GET /org/{id}/installers/{file}`: the file as it is, streamed.
pub async fn download_installer(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path((id, file)): Path<(i64, String)>,
) -> Result<Response, WebError> {
    tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let (path, installer) = find(&state, &viewer, &file).await?;
    let opened = tokio::fs::File::open(&path).await.map_err(|error| {
        tracing::error!("cannot open the installer {}: {error}", path.display());
        WebError::not_found(&viewer)
    })?;
    let length = opened
        .metadata()
        .await
        .map(|metadata| metadata.len())
        .unwrap_or(installer.size);
    let chunks = futures_util::stream::unfold(Some(opened), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0u8; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok::<_, std::io::Error>(buffer), Some(file)))
            }
            Err(error) => Some((Err(error), None)),
        }
    });
    state
        .audit(
            &viewer.user.login,
            "download_installer",
            Some(id),
            format!("{} for organization {id}", installer.file_name),
        )
        .await;
    Ok((attachment(&installer, length), Body::from_stream(chunks)).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct SettingsForm {
    secret: String,
}

/// `POST /org/{id}/installers/{file}` (an MSI, with the secret just created): the MSI
/// with the collector's address and the secret written in. The secret must be a
/// valid (not revoked, not expired) secret of this organization, by its id.
pub async fn download_msi_with_settings(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path((id, file)): Path<(i64, String)>,
    form: CsrfForm<SettingsForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let (path, installer) = find(&state, &viewer, &file).await?;
    let refused = |message: &str| WebError::unprocessable(viewer.lang, message);
    if !installer.kind.is_msi() {
        return Err(refused("only an MSI takes settings"));
    }
    let secret = form.form.secret.trim().to_string();
    let (secret_id, _) =
        crate::keys::parse_token(&secret).ok_or_else(|| refused("not an enrollment secret"))?;
    let now = crate::now();
    let valid = state.app.store.secrets(id).await?.into_iter().any(|known| {
        known.id == secret_id
            && known.revoked_at.is_none()
            && known.expires_at.is_none_or(|at| at > now)
    });
    if !valid {
        return Err(refused(
            "not a valid enrollment secret of this organization",
        ));
    }
    if installer.size > MAX_EDITED_MSI {
        return Err(refused("the MSI is too large to write settings into"));
    }
    let url = super::admin::server_url(&state, &headers);
    let mut settings = vec![("SERVER_URL", url.clone()), ("ENROLL_SECRET", secret)];
    if url.starts_with("http://") {
        settings.push(("ALLOW_HTTP", "1".to_string()));
    }
    let bytes = tokio::fs::read(&path).await.map_err(|error| {
        tracing::error!("cannot read the installer {}: {error}", path.display());
        WebError::not_found(&viewer)
    })?;
    let edited = tokio::task::spawn_blocking(move || msi_with_settings(bytes, &settings))
        .await
        .map_err(|error| {
            tracing::error!("the MSI edit stopped: {error}");
            refused("the MSI cannot be edited")
        })?
        .map_err(|error| {
            tracing::error!("{}: {error}", path.display());
            refused(&error.to_string())
        })?;
    state
        .audit(
            &viewer.user.login,
            "download_installer",
            Some(id),
            format!(
                "{} with settings (secret {secret_id}) for organization {id}",
                installer.file_name
            ),
        )
        .await;
    let length = edited.len() as u64;
    let mut response = (StatusCode::OK, attachment(&installer, length), edited).into_response();
    // The answer holds a secret.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_agent_installers_with_safe_names_are_served() {
        assert_eq!(
            InstallerKind::of("sverka-agent-0.1.0.msi"),
            Some(InstallerKind::MsiX64)
        );
        assert_eq!(
            InstallerKind::of("sverka-agent-0.1.0-x86.msi"),
            Some(InstallerKind::MsiX86)
        );
        assert_eq!(
            InstallerKind::of("sverka-agent_0.1.0_amd64.deb"),
            Some(InstallerKind::Deb)
        );
        assert_eq!(
            InstallerKind::of("sverka-agent-0.1.0-1.x86_64.rpm"),
            Some(InstallerKind::Rpm)
        );
        for refused in [
            "sverka-collector_0.1.0_amd64.deb",
            "../sverka-agent.msi",
            "sverka-agent/../../etc/passwd.deb",
            ".sverka-agent.msi",
            "sverka-agent.msi\u{0}.txt",
            "sverka-agent-0.1.0.exe",
            "sverka-agent 0.1.0.msi",
        ] {
            assert_eq!(InstallerKind::of(refused), None, "{refused}");
        }
    }

    #[test]
    fn settings_with_line_breaks_are_refused_before_the_msi_is_read() {
        let settings = [("SERVER_URL", "https://a\nb".to_string())];
        assert!(matches!(
            msi_with_settings(Vec::new(), &settings),
            Err(MsiSettingsError::BadValue("SERVER_URL"))
        ));
        assert!(matches!(
            msi_with_settings(b"not an msi".to_vec(), &[("SERVER_URL", "x".into())]),
            Err(MsiSettingsError::Package(_))
        ));
    }
}
