//! Enrollment secrets and host keys: `<id>.<64 hex digits>`. Only the SHA-256 of the
//! random part is stored; the id lets the collector find the row without a scan. The
//! random part has 256 bits, so a fast hash is enough (no password stretching needed).

use rand::RngCore;
use sha2::{Digest, Sha256};
use sverka_shared::inventory::hex;

const RANDOM_BYTES: usize = 32;

/// A fresh random part and its hash.
pub fn generate() -> (String, String) {
    let mut bytes = [0u8; RANDOM_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let random = hex(&bytes);
    let hash = hash(&random);
    (random, hash)
}

pub fn hash(random: &str) -> String {
    hex(&Sha256::digest(random.as_bytes()))
}

/// The token shown once: the row's id and the random part, `<id>.<random>`.
pub fn token(id: i64, random: &str) -> String {
    format!("{id}.{random}")
}

/// Splits a token into its id and random part; `None` when it is not shaped like one.
pub fn parse_token(token: &str) -> Option<(i64, &str)> {
    let (id, random) = token.trim().split_once('.')?;
    if id.is_empty() || id.len() > 18 || !id.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    if random.len() != RANDOM_BYTES * 2 || !random.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    Some((id.parse().ok()?, random))
}

/// The token of an `Authorization: Bearer <token>` header (host keys, link secrets,
/// personal API tokens), if the request has one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
}

/// Compares two hashes in time that does not depend on where they differ.
pub fn same_hash(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_junk() {
        let (random, hashed) = generate();
        let token = token(42, &random);
        let (id, part) = parse_token(&token).expect("a token");
        assert_eq!(id, 42);
        assert!(same_hash(&hash(part), &hashed));
        assert!(!same_hash(&hash("0"), &hashed));
        for junk in [
            "",
            "42",
            ".abc",
            "x.abc",
            "42.xyz",
            "-1.00",
            &format!("1.{random}0"),
        ] {
            assert_eq!(parse_token(junk), None, "{junk}");
        }
    }

    #[test]
    fn random_parts_differ() {
        assert_ne!(generate().0, generate().0);
    }
}
