//! Secrets at rest. The hub must use some secrets in clear (a webhook's HMAC signing key), so
//! they cannot be hashed like credentials; the database keeps them sealed with a key that lives
//! outside it, so a copied database file (a backup, a stolen disk image) reveals none of them.
//!
//! * Key file: `<data>/secret.key`, or the path in `$WARD_HUB_SECRET_KEY_FILE` (for a key on
//!   another volume or from a secrets manager). Created with mode 0600 and one random 256-bit
//!   key when missing. One key per line, base64; blank lines and `#` comments are ignored. The
//!   first key seals; every key listed opens.
//! * Rotation: put a new key (`head -c 32 /dev/urandom | base64`) on the first line and keep the
//!   old one below it; the next open of the store (any `ward hub` command) re-seals every value
//!   with the new key; then delete the old line.
//! * Sealed value: `enc:v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>` — ChaCha20-Poly1305
//!   (ring), a random 96-bit nonce per value, the column's name as associated data (a value
//!   copied into another column does not open). The key id is the first 8 hex digits of
//!   SHA-256(key): it names a key without revealing it.
//! * A value without the prefix is plaintext from before this scheme: it is read as is and
//!   sealed the next time the store opens.
//!
//! Without the key file the sealed values are lost: back it up with the database, but not in
//! the same place (see docs/hub.md).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// Environment variable naming the key file (default `<data>/secret.key`).
pub const KEY_FILE_ENV: &str = "WARD_HUB_SECRET_KEY_FILE";
/// The key file's name inside the data directory.
pub const KEY_FILE_NAME: &str = "secret.key";
/// Prefix of a sealed value (format version 1).
pub const SEALED_PREFIX: &str = "enc:v1:";
/// ChaCha20-Poly1305 keys are 256 bits.
const KEY_LEN: usize = 32;
/// Keys read from one file at most (a rotation needs two).
const MAX_KEYS: usize = 16;
/// A key file larger than this is not a key file.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("sealed with key {0}, which is not in the key file: restore the key file from its backup")]
    UnknownKey(String),
    #[error("sealed value is damaged or was moved from another column")]
    Damaged,
}

/// The keys of one store: the first seals, all open.
pub struct SecretKeys {
    keys: Vec<(String, LessSafeKey)>,
    path: PathBuf,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKeys").field("ids", &self.keys.iter().map(|(id, _)| id).collect::<Vec<_>>()).field("path", &self.path).finish()
    }
}

fn key_id(key: &[u8]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("secret key file {}: {what}", path.display()))
}

impl SecretKeys {
    /// The key file for a store in `dir`: `$WARD_HUB_SECRET_KEY_FILE` or `dir/secret.key`.
    pub fn default_path(dir: &Path) -> PathBuf {
        match std::env::var_os(KEY_FILE_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => dir.join(KEY_FILE_NAME),
        }
    }

    /// Reads the key file, creating it (0600, one random key) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        match Self::create(path) {
            Ok(()) => tracing::info!(path = %path.display(), "created the secret key file; back it up apart from the database"),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(invalid(path, format!("cannot create it: {e}"))),
        }
        Self::load(path)
    }

    fn create(path: &Path) -> std::io::Result<()> {
        let mut key = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        let text = format!(
            "# ward hub secret key: seals webhook secrets in the database. Back it up apart from the database.\n\
             # Rotation: add a new key on the first line, keep this one below until the store has been opened.\n{}\n",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        file.write_all(text.as_bytes())?;
        file.sync_all()
    }

    /// Reads an existing key file.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let meta = std::fs::metadata(path).map_err(|e| invalid(path, format!("cannot read it: {e}")))?;
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(invalid(path, format!("larger than {MAX_KEY_FILE_BYTES} bytes")));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "secret key file was readable by others; made it private (0600)");
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| invalid(path, format!("cannot make it private: {e}")))?;
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| invalid(path, format!("cannot read it: {e}")))?;
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(line)
                .map_err(|_| invalid(path, format!("line {n} is not base64")))?;
            if bytes.len() != KEY_LEN {
                return Err(invalid(path, format!("line {n} is {} bytes, a key is {KEY_LEN}", bytes.len())));
            }
            let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| invalid(path, format!("line {n} is not a usable key")))?;
            keys.push((key_id(&bytes), LessSafeKey::new(unbound)));
            if keys.len() > MAX_KEYS {
                return Err(invalid(path, format!("more than {MAX_KEYS} keys")));
            }
        }
        if keys.is_empty() {
            return Err(invalid(path, "holds no key (restore it from its backup)"));
        }
        Ok(SecretKeys { keys, path: path.to_owned() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seals `plain` for the column named `column` with the current key.
    pub fn seal(&self, column: &str, plain: &str) -> String {
        let (id, key) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut sealed = plain.as_bytes().to_vec();
        // Sealing fails only for inputs beyond ChaCha20's 256 GiB limit.
        if key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(column.as_bytes()), &mut sealed).is_err() {
            sealed.clear();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{id}:{}", base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// Opens a value of the column `column`; plaintext (no prefix) comes back as it is.
    pub fn open(&self, column: &str, stored: &str) -> Result<String, SecretError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else { return Ok(stored.to_string()) };
        let (id, body) = rest.split_once(':').ok_or(SecretError::Damaged)?;
        let (_, key) = self.keys.iter().find(|(k, _)| k == id).ok_or_else(|| SecretError::UnknownKey(id.to_string()))?;
        let mut bytes = base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| SecretError::Damaged)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretError::Damaged);
        }
        let mut sealed = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| SecretError::Damaged)?;
        let plain = key.open_in_place(nonce, Aad::from(column.as_bytes()), &mut sealed).map_err(|_| SecretError::Damaged)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Damaged)
    }

    /// Whether `stored` is sealed with the current key (else it is re-sealed on open).
    pub fn is_current(&self, stored: &str) -> bool {
        stored.strip_prefix(SEALED_PREFIX).and_then(|rest| rest.split_once(':')).is_some_and(|(id, _)| id == self.keys[0].0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_key(path: &Path, keys: &[[u8; KEY_LEN]]) {
        let text: Vec<String> = keys.iter().map(|k| base64::engine::general_purpose::STANDARD.encode(k)).collect();
        std::fs::write(path, text.join("\n")).unwrap();
    }

    #[test]
    fn seals_opens_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let keys = SecretKeys::load_or_create(&path).unwrap();
        let sealed = keys.seal("contacts.secret", "whsec_abc");
        assert!(sealed.starts_with(SEALED_PREFIX) && !sealed.contains("whsec_abc"));
        assert_ne!(sealed, keys.seal("contacts.secret", "whsec_abc"), "a fresh nonce every time");
        assert_eq!(keys.open("contacts.secret", &sealed).unwrap(), "whsec_abc");
        assert_eq!(keys.open("other.column", &sealed), Err(SecretError::Damaged));
        assert_eq!(keys.open("contacts.secret", "legacy plaintext").unwrap(), "legacy plaintext");
        assert!(keys.is_current(&sealed) && !keys.is_current("legacy plaintext"));
        let at = sealed.len() - 5;
        let flipped = if &sealed[at..at + 1] == "A" { "B" } else { "A" };
        let tampered = format!("{}{flipped}{}", &sealed[..at], &sealed[at + 1..]);
        assert!(keys.open("contacts.secret", &tampered).is_err());
        // Rotation: a new first key seals; the old one still opens.
        let old = std::fs::read_to_string(&path).unwrap();
        let new_key = [7u8; KEY_LEN];
        std::fs::write(&path, format!("{}\n{old}", base64::engine::general_purpose::STANDARD.encode(new_key))).unwrap();
        let rotated = SecretKeys::load(&path).unwrap();
        assert!(!rotated.is_current(&sealed));
        assert_eq!(rotated.open("contacts.secret", &sealed).unwrap(), "whsec_abc");
        // Without the old key the value cannot be opened, and the error says what to do.
        write_key(&path, &[new_key]);
        let err = SecretKeys::load(&path).unwrap().open("contacts.secret", &sealed).unwrap_err();
        assert!(err.to_string().contains("restore the key file"), "{err}");
    }

    #[test]
    fn bad_key_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "# only a comment\n").unwrap();
        assert!(SecretKeys::load(&path).unwrap_err().to_string().contains("no key"));
        std::fs::write(&path, "not base64!\n").unwrap();
        assert!(SecretKeys::load(&path).unwrap_err().to_string().contains("line 1"));
        std::fs::write(&path, "AAAA\n").unwrap();
        assert!(SecretKeys::load(&path).unwrap_err().to_string().contains("3 bytes"));
        assert!(SecretKeys::load(&dir.path().join("missing")).is_err());
    }
}
