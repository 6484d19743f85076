//! WAMP-Cryptosign (Ed25519): the client names its public key in
//! `HELLO.Details.authextra.pubkey` (hex), the router sends 32 random bytes (hex, in
//! `CHALLENGE.Extra.challenge`), and the client proves it holds the private key by
//! signing them. The answer is hex of signature ‖ challenge (96 bytes, what autobahn
//! sends and the spec asks for) or of the signature alone (64 bytes); both are
//! accepted, and in the long form the echoed challenge must be the one sent.
//!
//! TLS channel binding (signing challenge XOR the channel id) is not supported: the
//! authenticator refuses a HELLO that asks for it rather than silently not binding.

use ed25519_dalek::{Signature, VerifyingKey};
use thiserror::Error;

/// Why an Ed25519 key or answer was refused; the message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptosignError {
    #[error("HELLO.Details.authextra.pubkey must be an Ed25519 public key: 64 hex digits")]
    MalformedKey,
    #[error("HELLO.Details.authextra.pubkey is not a valid Ed25519 public key")]
    InvalidKey,
    #[error("the cryptosign signature must be hex of 64 bytes (signature) or 96 bytes (signature and challenge)")]
    MalformedSignature,
    #[error("the cryptosign signature does not echo the challenge sent")]
    WrongChallenge,
    #[error("invalid cryptosign signature")]
    BadSignature,
}

/// A fresh challenge: 32 bytes from the operating system's CSPRNG.
pub fn new_challenge() -> [u8; 32] {
    rand::random()
}

/// The public key a client announced, checked to be a point of the curve.
pub fn parse_public_key(hex: &str) -> Result<[u8; 32], CryptosignError> {
    let bytes = decode_hex(hex).ok_or(CryptosignError::MalformedKey)?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| CryptosignError::MalformedKey)?;
    VerifyingKey::from_bytes(&key).map_err(|_| CryptosignError::InvalidKey)?;
    Ok(key)
}

/// Checks the AUTHENTICATE signature (hex) of `challenge` by `pubkey`. Strict
/// verification: a signature altered into another valid one (malleability) or made
/// with a weak key is refused.
pub fn verify(pubkey: &[u8; 32], challenge: &[u8; 32], answer: &str) -> Result<(), CryptosignError> {
    let bytes = decode_hex(answer.trim()).ok_or(CryptosignError::MalformedSignature)?;
    let signature = match bytes.len() {
        64 => &bytes[..],
        96 if bytes[64..] == challenge[..] => &bytes[..64],
        96 => return Err(CryptosignError::WrongChallenge),
        _ => return Err(CryptosignError::MalformedSignature),
    };
    let signature = Signature::from_slice(signature).map_err(|_| CryptosignError::MalformedSignature)?;
    let key = VerifyingKey::from_bytes(pubkey).map_err(|_| CryptosignError::InvalidKey)?;
    key.verify_strict(challenge, &signature).map_err(|_| CryptosignError::BadSignature)
}

/// Lower-case hex, as keys are stored and compared (`user_keys.pubkey`).
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Hex of either case; None for an odd length or a non-hex character.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        decode_hex(s).unwrap().try_into().unwrap()
    }

    /// The spec's test vectors without channel binding (WAMP-Cryptosign, "Test
    /// Vectors"): private key seed, challenge, and the 96-byte answer.
    const VECTORS: [(&str, &str, &str); 3] = [
        (
            "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "b32675b221f08593213737bef8240e7c15228b07028e19595294678c90d11c0cae80a357331bfc5cc9fb71081464e6e75013517c2cf067ad566a6b7b728e5d03ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ),
        (
            "d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd",
            "b26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d",
            "d4209ad10d5aff6bfbc009d7e924795de138a63515efc7afc6b01b7fe5201372190374886a70207b042294af5bd64ce725cd8dceb344e6d11c09d1aaaf4d660fb26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d",
        ),
        (
            "6e1fde9cf9e2359a87420b65a87dc0c66136e66945196ba2475990d8a0c3a25b",
            "b05e6b8ad4d69abf74aa3be3c0ee40ae07d66e1895b9ab09285a2f1192d562d2",
            "7beb282184baadd08f166f16dd683b39cab53816ed81e6955def951cb2ddad1ec184e206746fd82bda075af03711d3d5658fc84a76196b0fa8d1ebc92ef9f30bb05e6b8ad4d69abf74aa3be3c0ee40ae07d66e1895b9ab09285a2f1192d562d2",
        ),
    ];

    #[test]
    fn spec_vectors_verify_in_both_forms() {
        for (seed, challenge, answer) in VECTORS {
            let signing = SigningKey::from_bytes(&unhex(seed));
            let pubkey = signing.verifying_key().to_bytes();
            let challenge: [u8; 32] = unhex(challenge);
            // Our own signing reproduces the spec's (Ed25519 is deterministic).
            assert_eq!(encode_hex(&signing.sign(&challenge).to_bytes()) + &encode_hex(&challenge), answer);
            assert_eq!(verify(&pubkey, &challenge, answer), Ok(()));
            assert_eq!(verify(&pubkey, &challenge, &answer[..128]), Ok(()), "signature only");
            assert_eq!(verify(&pubkey, &challenge, &answer.to_uppercase()), Ok(()), "upper-case hex");
            assert_eq!(parse_public_key(&encode_hex(&pubkey)), Ok(pubkey));
        }
    }

    #[test]
    fn wrong_answers_are_refused() {
        let (seed, challenge, answer) = VECTORS[0];
        let pubkey = SigningKey::from_bytes(&unhex(seed)).verifying_key().to_bytes();
        let challenge: [u8; 32] = unhex(challenge);
        // Another key's valid signature of the same challenge.
        let other = VECTORS[1].0;
        let forged = encode_hex(&SigningKey::from_bytes(&unhex(other)).sign(&challenge).to_bytes());
        assert_eq!(verify(&pubkey, &challenge, &forged), Err(CryptosignError::BadSignature));
        // A flipped bit in the signature.
        let mut flipped = decode_hex(answer).unwrap();
        flipped[5] ^= 1;
        assert_eq!(verify(&pubkey, &challenge, &encode_hex(&flipped)), Err(CryptosignError::BadSignature));
        // The right signature echoing another challenge.
        let echo = format!("{}{}", &answer[..128], "00".repeat(32));
        assert_eq!(verify(&pubkey, &challenge, &echo), Err(CryptosignError::WrongChallenge));
        for malformed in ["", "zz", &answer[..127], &answer[..130], "signature", &format!("{answer}00")] {
            assert_eq!(verify(&pubkey, &challenge, malformed), Err(CryptosignError::MalformedSignature), "{malformed:?}");
        }
    }

    #[test]
    fn public_keys_are_checked() {
        assert_eq!(parse_public_key("abcd"), Err(CryptosignError::MalformedKey));
        assert_eq!(parse_public_key(&"g".repeat(64)), Err(CryptosignError::MalformedKey));
        assert_eq!(parse_public_key(&"+f".repeat(32)), Err(CryptosignError::MalformedKey));
        // y = 2 is on no point of the curve: not a key, though 32 bytes of hex.
        let not_a_point = format!("02{}", "00".repeat(31));
        assert_eq!(parse_public_key(&not_a_point), Err(CryptosignError::InvalidKey));
    }
}
