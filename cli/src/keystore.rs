//! Named secp256k1 keys in `$WISP_HOME/accounts.json` (default `~/.wisp`). Devnet keys are
//! marked devnet-only: they are printed on screen and must never hold real funds.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One stored key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredAccount {
    /// The name used with `--from`.
    pub name: String,
    /// The 32-byte secret key, hex.
    pub secret_hex: String,
    /// Created by `wisp devnet`; never use it on a real network.
    #[serde(default)]
    pub devnet_only: bool,
}

impl StoredAccount {
    /// The key pair.
    ///
    /// # Errors
    /// If the stored secret is not a valid key.
    pub fn keypair(&self) -> Result<secp256k1::Keypair> {
        let bytes = wisp_core::hash::from_hex(&self.secret_hex)
            .ok_or_else(|| anyhow!("account {}: secret is not hex", self.name))?;
        secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &bytes)
            .with_context(|| format!("account {}: not a valid secret key", self.name))
    }

    /// The x-only public key (the Wisp agent and Kaspa P2PK payload).
    pub fn x_only_key(&self) -> Result<[u8; 32]> {
        Ok(self.keypair()?.x_only_public_key().0.serialize())
    }
}

/// The keystore file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Keystore {
    /// The accounts, in creation order.
    pub accounts: Vec<StoredAccount>,
    #[serde(skip)]
    path: PathBuf,
}

/// `$WISP_HOME`, or `~/.wisp`.
pub fn wisp_home() -> PathBuf {
    if let Some(home) = std::env::var_os("WISP_HOME") {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".wisp")
}

pub use wisp_node::datadir::random_secret;

impl Keystore {
    /// Loads the keystore at `path` (empty if the file does not exist).
    ///
    /// # Errors
    /// If the file exists but cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Keystore> {
        let mut store = if path.exists() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str::<Keystore>(&text)
                .with_context(|| format!("{} is not a Wisp keystore", path.display()))?
        } else {
            Keystore::default()
        };
        store.path = path.to_path_buf();
        Ok(store)
    }

    /// The default keystore (`$WISP_HOME/accounts.json`).
    ///
    /// # Errors
    /// As [`Keystore::load`].
    pub fn default_store() -> Result<Keystore> {
        Self::load(&wisp_home().join("accounts.json"))
    }

    /// Writes the keystore back, atomically and readable only by its owner (0600 on Unix).
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        write_private(&self.path, text.as_bytes())
    }

    /// Where it is stored.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The account called `name`.
    ///
    /// # Errors
    /// If there is none (the message lists the names there are).
    pub fn get(&self, name: &str) -> Result<&StoredAccount> {
        self.accounts.iter().find(|a| a.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.accounts.iter().map(|a| a.name.as_str()).collect();
            anyhow!("no account `{name}` in {} (have: {}); create one with `wisp account new {name}` or start `wisp devnet`", self.path.display(), if names.is_empty() { "none".to_string() } else { names.join(", ") })
        })
    }

    /// Imports a devnet account: adds it, or replaces an earlier devnet account of that name.
    /// An account of the user's own with that name is never replaced: returns `false` then.
    pub fn import_devnet(&mut self, account: StoredAccount) -> bool {
        match self.accounts.iter_mut().find(|a| a.name == account.name) {
            Some(existing) if existing.devnet_only => {
                *existing = account;
                true
            }
            Some(_) => false,
            None => {
                self.accounts.push(account);
                true
            }
        }
    }

    /// Imports a devnet's accounts, `(name, secret hex)`, with [`Keystore::import_devnet`] and
    /// saves; returns the names it did not import because an account of the user's own has
    /// them.
    ///
    /// # Errors
    /// If the keystore cannot be written.
    pub fn import_devnet_accounts(
        &mut self,
        accounts: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Vec<String>> {
        let mut kept = Vec::new();
        for (name, secret_hex) in accounts {
            let account = StoredAccount {
                name: name.clone(),
                secret_hex,
                devnet_only: true,
            };
            if !self.import_devnet(account) {
                kept.push(name);
            }
        }
        self.save()?;
        Ok(kept)
    }

    /// Creates a new random account called `name`.
    ///
    /// # Errors
    /// If the name is taken.
    pub fn create(&mut self, name: &str) -> Result<&StoredAccount> {
        if self.accounts.iter().any(|a| a.name == name) {
            bail!("an account named `{name}` already exists");
        }
        self.accounts.push(StoredAccount {
            name: name.into(),
            secret_hex: wisp_core::hash::to_hex(&random_secret()),
            devnet_only: false,
        });
        Ok(self.accounts.last().expect("just pushed"))
    }
}

/// [`wisp_node::datadir::write_private`] (0600, atomic), with the path in the error.
///
/// # Errors
/// If the directory or the file cannot be written.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    wisp_node::datadir::write_private(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards defect 24 of the hardening review: the keystore was written in place and chmod-ed
    /// afterwards (readable by others in between, torn by a crash), and the devnet overwrote
    /// the user's own accounts named `dev*`.
    #[test]
    fn keystore_is_private_atomic_and_keeps_user_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("accounts.json");
        let mut store = Keystore::load(&path).unwrap();
        store.create("dev0").unwrap();
        let mine = store.get("dev0").unwrap().secret_hex.clone();
        let devnet = StoredAccount {
            name: "dev0".into(),
            secret_hex: "11".repeat(32),
            devnet_only: true,
        };
        assert!(!store.import_devnet(devnet.clone()));
        assert!(store.import_devnet(StoredAccount {
            name: "dev1".into(),
            ..devnet
        }));
        store.save().unwrap();
        let again = Keystore::load(&path).unwrap();
        assert_eq!(again.get("dev0").unwrap().secret_hex, mine);
        assert!(again.get("dev1").unwrap().devnet_only);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }
}
