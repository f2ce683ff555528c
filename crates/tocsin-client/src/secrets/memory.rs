//! A secret store that lives only as long as the process: the last resort when neither
//! the OS keyring nor a file may be used.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::{SecretError, SecretStore};

/// Keeps secrets in memory for this run only.
#[derive(Debug, Default)]
pub struct MemoryStore {
    secrets: Mutex<HashMap<String, String>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, account: &str) -> Result<Option<String>, SecretError> {
        let secrets = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(secrets.get(account).cloned())
    }

    fn set(&self, account: &str, secret: &str) -> Result<(), SecretError> {
        let mut secrets = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        secrets.insert(account.to_owned(), secret.to_owned());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        let mut secrets = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        secrets.remove(account);
        Ok(())
    }

    fn describe(&self) -> &'static str {
        "memory (this run only)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_delete() {
        let store = MemoryStore::new();
        assert_eq!(store.get("s|a").expect("get"), None);
        store.set("s|a", "tsr_1").expect("set");
        store.set("s|b", "tsr_2").expect("set");
        store.set("s|a", "tsr_3").expect("replace");
        assert_eq!(store.get("s|a").expect("get").as_deref(), Some("tsr_3"));
        assert_eq!(store.get("s|b").expect("get").as_deref(), Some("tsr_2"));
        store.delete("s|a").expect("delete");
        store.delete("s|a").expect("deleting twice is fine");
        assert_eq!(store.get("s|a").expect("get"), None);
        assert_eq!(store.get("s|b").expect("get").as_deref(), Some("tsr_2"));
    }
}
