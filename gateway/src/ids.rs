//! Ids of the rows the gateway creates (tokens, webhooks and their deliveries, jobs, runs,
//! Helm repositories).

use rand::RngCore;

/// A fresh random id: 128 bits from the thread's CSPRNG, as 32 lower-case hex digits.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let a = random_id();
        let b = random_id();
        assert_eq!(a.len(), 32);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "{a}"
        );
        assert_ne!(a, b);
    }
}
