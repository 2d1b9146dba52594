//! The running system's registry, read through the registry API (Windows only): the
//! machine's `HKLM\SOFTWARE` and the hives of loaded profiles under `HKEY_USERS`.
//! Keys are opened for reading only, always in the 64-bit view (`KEY_WOW64_64KEY`), so
//! a 32-bit agent on 64-bit Windows reads the same keys as the 64-bit one (the 32-bit
//! programs' keys under `WOW6432Node`, as it does); 32-bit Windows ignores the flag.

use windows_registry::{Key, LOCAL_MACHINE, USERS};

use super::{RegValue, RegistryError, RegistryKey, RegistryView};

/// `ERROR_FILE_NOT_FOUND` as an HRESULT: the key does not exist.
const NOT_FOUND: i32 = 0x8007_0002_u32 as i32;
/// `KEY_WOW64_64KEY` (winnt.h): open the 64-bit view of the registry.
const KEY_WOW64_64KEY: u32 = 0x0100;

/// Which predefined key a view starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveRoot {
    LocalMachine,
    Users,
}

/// A hive of the running system: a predefined key and a prefix below it.
#[derive(Debug)]
pub struct LiveView {
    root: LiveRoot,
    prefix: String,
    label: String,
}

impl LiveView {
    /// `HKLM\SOFTWARE`.
    pub fn software() -> LiveView {
        LiveView {
            root: LiveRoot::LocalMachine,
            prefix: "SOFTWARE".into(),
            label: "HKLM\\SOFTWARE".into(),
        }
    }

    /// `HKLM\SYSTEM`.
    pub fn system() -> LiveView {
        LiveView {
            root: LiveRoot::LocalMachine,
            prefix: "SYSTEM".into(),
            label: "HKLM\\SYSTEM".into(),
        }
    }

    /// A key under `HKEY_USERS` (`S-1-5-21-...` or `S-1-5-21-..._Classes`).
    pub fn user(subkey: &str) -> LiveView {
        LiveView {
            root: LiveRoot::Users,
            prefix: subkey.to_string(),
            label: format!("HKU\\{subkey}"),
        }
    }

    fn predefined(&self) -> &'static Key {
        match self.root {
            LiveRoot::LocalMachine => LOCAL_MACHINE,
            LiveRoot::Users => USERS,
        }
    }
}

/// The names of the hives loaded under `HKEY_USERS`.
pub fn loaded_user_hives() -> Result<Vec<String>, RegistryError> {
    USERS
        .keys()
        .map(|keys| keys.collect())
        .map_err(|failure| RegistryError {
            location: "HKU".into(),
            message: failure.message(),
        })
}

impl RegistryView for LiveView {
    fn label(&self) -> &str {
        &self.label
    }

    fn read_key(&self, path: &str) -> Result<Option<RegistryKey>, RegistryError> {
        let full = if path.is_empty() {
            self.prefix.clone()
        } else if self.prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}\\{path}", self.prefix)
        };
        let error = |message: String| RegistryError {
            location: format!("{}\\{path}", self.label),
            message,
        };
        let key = match self
            .predefined()
            .options()
            .read()
            .access(KEY_WOW64_64KEY)
            .open(&full)
        {
            Ok(key) => key,
            Err(failure) if failure.code().0 == NOT_FOUND => return Ok(None),
            Err(failure) => return Err(error(failure.message())),
        };
        let subkeys: Vec<String> = key
            .keys()
            .map_err(|failure| error(failure.message()))?
            .collect();
        let values = key
            .values()
            .map_err(|failure| error(failure.message()))?
            .map(|(name, value)| {
                let kind: u32 = value.ty().into();
                (name, RegValue::decode(kind, &value))
            })
            .collect();
        Ok(Some(RegistryKey {
            subkeys,
            values,
            problems: Vec::new(),
        }))
    }
}
