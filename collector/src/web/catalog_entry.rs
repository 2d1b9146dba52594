//! One catalog entry added or changed from the catalog page's small form: the stored
//! additions (TOML) are read, the `[[app]]` with that id is changed (or added), and the
//! text is written back in TOML's own layout (comments in the additions are not kept;
//! the text area remains for everything the form does not cover). The result is
//! checked like any catalog text when it is saved.

/// Statuses the form offers (the catalog's `AppStatus`).
pub const STATUSES: [&str; 3] = ["banned", "approved", "watch"];

/// Signature kinds the form offers: the catalog's lists of patterns.
pub const SIGNATURE_KINDS: [&str; 10] = [
    "packages",
    "flatpak",
    "snap",
    "processes",
    "files",
    "appx",
    "web_apps",
    "desktop_entries",
    "wm_classes",
    "data_dirs",
];

/// What the form asks for; empty fields leave the entry's value as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryChange {
    pub id: String,
    pub name: String,
    pub status: String,
    pub signature_kind: String,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("the stored additions cannot be read as TOML: {0}")]
    Unreadable(String),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: &str) -> EntryError {
    EntryError::Invalid(message.to_string())
}

/// The additions `overrides` with `change` applied.
pub fn apply_entry(overrides: &str, change: &EntryChange) -> Result<String, EntryError> {
    let mut additions: toml::Table = overrides
        .parse()
        .map_err(|error: toml::de::Error| EntryError::Unreadable(error.message().to_string()))?;
    let id = change.id.trim();
    if id.is_empty() {
        return Err(invalid("an application needs an id"));
    }
    let status = change.status.trim();
    if !status.is_empty() && !STATUSES.contains(&status) {
        return Err(invalid("the status is banned, approved or watch"));
    }
    let signature = change.signature.trim();
    let kind = change.signature_kind.trim();
    if !signature.is_empty() && !SIGNATURE_KINDS.contains(&kind) {
        return Err(invalid("unknown kind of signature"));
    }
    let apps = additions
        .entry("app")
        .or_insert_with(|| toml::Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| invalid("`app` in the additions is not a list of tables"))?;
    let index = match apps
        .iter()
        .position(|app| app.get("id").and_then(toml::Value::as_str) == Some(id))
    {
        Some(index) => index,
        None => {
            let mut app = toml::Table::new();
            app.insert("id".into(), toml::Value::String(id.to_string()));
            apps.push(toml::Value::Table(app));
            apps.len() - 1
        }
    };
    let app = apps
        .get_mut(index)
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(|| invalid("an `[[app]]` in the additions is not a table"))?;
    let name = change.name.trim();
    if !name.is_empty() {
        app.insert("name".into(), toml::Value::String(name.to_string()));
    }
    if !status.is_empty() {
        app.insert("status".into(), toml::Value::String(status.to_string()));
    }
    if !signature.is_empty() {
        let signatures = app
            .entry("signatures")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| invalid("`signatures` of this application is not a table"))?;
        let patterns = signatures
            .entry(kind)
            .or_insert_with(|| toml::Value::Array(Vec::new()))
            .as_array_mut()
            .ok_or_else(|| invalid("this kind of signature is not a list"))?;
        if !patterns
            .iter()
            .any(|pattern| pattern.as_str() == Some(signature))
        {
            patterns.push(toml::Value::String(signature.to_string()));
        }
    }
    toml::to_string(&additions).map_err(|error| EntryError::Invalid(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: &str, name: &str, status: &str, kind: &str, signature: &str) -> EntryChange {
        EntryChange {
            id: id.into(),
            name: name.into(),
            status: status.into(),
            signature_kind: kind.into(),
            signature: signature.into(),
        }
    }

    fn parsed(text: &str) -> toml::Table {
        text.parse().expect("TOML")
    }

    #[test]
    fn adds_then_changes_one_entry_and_keeps_the_others() {
        let start = "# ours\n[[app]]\nid = \"skype\"\nstatus = \"banned\"\n";
        let added = apply_entry(
            start,
            &change("element", "Element", "watch", "packages", "element-desktop"),
        )
        .expect("added");
        let table = parsed(&added);
        let apps = table["app"].as_array().expect("apps");
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0]["id"].as_str(), Some("skype"));
        assert_eq!(apps[0]["status"].as_str(), Some("banned"));
        assert_eq!(apps[1]["name"].as_str(), Some("Element"));
        assert_eq!(
            apps[1]["signatures"]["packages"].as_array().map(Vec::len),
            Some(1)
        );

        // The same id again: status changed, a second signature added, the name kept;
        // a repeated signature is not doubled.
        let changed = apply_entry(
            &added,
            &change("element", "", "banned", "flatpak", "im.riot.Riot"),
        )
        .expect("changed");
        let changed = apply_entry(
            &changed,
            &change("element", "", "", "flatpak", "im.riot.Riot"),
        )
        .expect("again");
        let table = parsed(&changed);
        let apps = table["app"].as_array().expect("apps");
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[1]["status"].as_str(), Some("banned"));
        assert_eq!(apps[1]["name"].as_str(), Some("Element"));
        assert_eq!(
            apps[1]["signatures"]["flatpak"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(
            apps[1]["signatures"]["packages"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn empty_additions_and_refusals() {
        let text = apply_entry("", &change("max", "", "approved", "", "")).expect("added");
        assert_eq!(parsed(&text)["app"][0]["status"].as_str(), Some("approved"));
        assert!(matches!(
            apply_entry("", &change(" ", "", "banned", "", "")),
            Err(EntryError::Invalid(_))
        ));
        assert!(matches!(
            apply_entry("", &change("x", "", "forbidden", "", "")),
            Err(EntryError::Invalid(_))
        ));
        assert!(matches!(
            apply_entry("", &change("x", "", "", "registry", "y")),
            Err(EntryError::Invalid(_))
        ));
        assert!(matches!(
            apply_entry("app = 3", &change("x", "", "banned", "", "")),
            Err(EntryError::Invalid(_))
        ));
        assert!(matches!(
            apply_entry("[[app]\n", &change("x", "", "banned", "", "")),
            Err(EntryError::Unreadable(_))
        ));
    }
}
