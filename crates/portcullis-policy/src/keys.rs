//! Virtual API key material: generation, the public prefix shown in listings, and hashing.
//! Keys are stored only as a SHA-256 digest: they carry 192 random bits, so a fast hash is
//! safe (no dictionary to attack) and keeps authentication to well under a microsecond.

use sha2::{Digest, Sha256};

/// Every Portcullis key starts with this, so leaked keys are recognizable by secret scanners.
pub const KEY_PREFIX: &str = "pcl_";

/// Number of characters of a key that may be shown (prefix + 8 random hex digits).
const SHOWN_CHARS: usize = KEY_PREFIX.len() + 8;

/// A freshly generated key: the secret (shown once) and what is stored about it.
#[derive(Clone)]
pub struct GeneratedKey {
    /// The full key, handed to the user exactly once.
    pub secret: String,
    /// Stable public identifier (`key_` + 12 hex digits) used in listings and logs.
    pub id: String,
    /// The first characters of the key, to recognise it in listings.
    pub prefix: String,
    /// Lowercase hex SHA-256 of the secret: the only form that is stored.
    pub hash: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("id", &self.id)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Makes a new random key from the operating system's CSPRNG.
pub fn generate_key() -> Result<GeneratedKey, getrandom::Error> {
    let mut secret_bytes = [0u8; 24];
    let mut id_bytes = [0u8; 6];
    getrandom::fill(&mut secret_bytes)?;
    getrandom::fill(&mut id_bytes)?;
    let secret = format!("{KEY_PREFIX}{}", hex::encode(secret_bytes));
    Ok(GeneratedKey {
        id: format!("key_{}", hex::encode(id_bytes)),
        prefix: secret[..SHOWN_CHARS].to_string(),
        hash: hex::encode(hash_key(&secret)),
        secret,
    })
}

/// SHA-256 digest of a presented key, the lookup key of the in-memory key ring.
pub fn hash_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hashed() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.id, b.id);
        assert!(a.secret.starts_with(KEY_PREFIX));
        assert_eq!(a.secret.len(), KEY_PREFIX.len() + 48);
        assert!(a.secret.starts_with(&a.prefix));
        assert_eq!(a.hash, hex::encode(hash_key(&a.secret)));
        assert!(!format!("{a:?}").contains(&a.secret));
    }
}
