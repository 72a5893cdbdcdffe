//! `X-Silo-Signature`: `sha256=` and the lower-case hex HMAC-SHA256 of the body's exact bytes,
//! keyed with the UTF-8 bytes of `webhooks.secret`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_known_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn another_secret_or_body_signs_otherwise() {
        let base = signature("secret-one-0123456789", b"{}");
        assert_ne!(base, signature("secret-two-0123456789", b"{}"));
        assert_ne!(base, signature("secret-one-0123456789", b"{ }"));
    }
}
