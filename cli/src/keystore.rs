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

/// A fresh random secret key.
pub fn random_secret() -> [u8; 32] {
    secp256k1::SecretKey::new(&mut secp256k1::rand::thread_rng()).secret_bytes()
}

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

    /// Writes the keystore back (mode 0600 on Unix).
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn save(&self) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&self.path, text)
            .with_context(|| format!("writing {}", self.path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(())
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

    /// Adds or replaces an account.
    pub fn upsert(&mut self, account: StoredAccount) {
        match self.accounts.iter_mut().find(|a| a.name == account.name) {
            Some(existing) => *existing = account,
            None => self.accounts.push(account),
        }
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
