//! MTProto 2.0 message encryption, server side.
//!
//! grammers-crypto implements the client's half (encrypt with x = 0,
//! decrypt with x = 8); the server needs the mirror image, so the key
//! derivation is done here with the same AES-IGE primitive
//! (`grammers_crypto::aes`) and SHA-256:
//!
//! - msg_key_large = SHA256(substr(auth_key, 88 + x, 32) + plaintext + padding)
//! - msg_key = substr(msg_key_large, 8, 16)
//! - sha256_a = SHA256(msg_key + substr(auth_key, x, 36))
//! - sha256_b = SHA256(substr(auth_key, 40 + x, 36) + msg_key)
//! - aes_key = a[0..8] + b[8..24] + a[24..32]; aes_iv = b[0..8] + a[8..24] + b[24..32]
//!
//! with x = 0 for client → server and x = 8 for server → client.

use grammers_crypto::aes;
use sha2::{Digest, Sha256};

/// Why an incoming packet was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CryptoError {
    /// Too short or not a multiple of 16 bytes.
    BadLength,
    /// Encrypted with another key (the client has a different session).
    UnknownKey,
    /// The msg_key does not match the decrypted content.
    BadMsgKey,
}

/// The shared authorization key with its id.
#[derive(Clone)]
pub(crate) struct ServerKey {
    data: [u8; 256],
    key_id: [u8; 8],
}

const FROM_CLIENT: usize = 0;
const FROM_SERVER: usize = 8;

impl ServerKey {
    pub fn new(data: [u8; 256]) -> Self {
        // auth_key_id = the 64 lower-order bits of SHA1(auth_key). grammers
        // computes it but keeps it private; it is also the first 8 bytes of
        // anything the client encrypts, so let the client code tell us.
        let auth_key = grammers_crypto::AuthKey::from_bytes(data);
        let mut probe = grammers_crypto::DequeBuffer::with_capacity(64, 32);
        probe.extend([0u8; 16]);
        grammers_crypto::encrypt_data_v2(&mut probe, &auth_key);
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&probe[..8]);
        ServerKey { data, key_id }
    }

    fn calc_key(&self, msg_key: &[u8; 16], x: usize) -> ([u8; 32], [u8; 32]) {
        let a: [u8; 32] = Sha256::new().chain_update(msg_key).chain_update(&self.data[x..x + 36]).finalize().into();
        let b: [u8; 32] =
            Sha256::new().chain_update(&self.data[40 + x..40 + x + 36]).chain_update(msg_key).finalize().into();
        let mut key = [0u8; 32];
        key[0..8].copy_from_slice(&a[0..8]);
        key[8..24].copy_from_slice(&b[8..24]);
        key[24..32].copy_from_slice(&a[24..32]);
        let mut iv = [0u8; 32];
        iv[0..8].copy_from_slice(&b[0..8]);
        iv[8..24].copy_from_slice(&a[8..24]);
        iv[24..32].copy_from_slice(&b[24..32]);
        (key, iv)
    }

    fn msg_key(&self, plaintext: &[u8], x: usize) -> [u8; 16] {
        let large: [u8; 32] =
            Sha256::new().chain_update(&self.data[88 + x..88 + x + 32]).chain_update(plaintext).finalize().into();
        let mut msg_key = [0u8; 16];
        msg_key.copy_from_slice(&large[8..24]);
        msg_key
    }

    /// Decrypts a client packet (`auth_key_id + msg_key + ciphertext`) and
    /// returns the plaintext (salt, session_id, message, padding).
    pub fn decrypt_from_client(&self, packet: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if packet.len() < 24 + 32 || (packet.len() - 24) % 16 != 0 {
            return Err(CryptoError::BadLength);
        }
        if packet[..8] != self.key_id {
            return Err(CryptoError::UnknownKey);
        }
        let mut msg_key = [0u8; 16];
        msg_key.copy_from_slice(&packet[8..24]);
        let (key, iv) = self.calc_key(&msg_key, FROM_CLIENT);
        let mut plaintext = packet[24..].to_vec();
        aes::ige_decrypt(&mut plaintext, &key, &iv);
        if self.msg_key(&plaintext, FROM_CLIENT) != msg_key {
            return Err(CryptoError::BadMsgKey);
        }
        Ok(plaintext)
    }

    /// Encrypts a server plaintext (salt, session_id, message) into a packet
    /// for the client, adding 12..1024 bytes of random padding.
    pub fn encrypt_to_client(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut padded = plaintext.to_vec();
        let padding = 12 + (16 - (plaintext.len() + 12) % 16) % 16;
        padded.extend((0..padding).map(|_| fastrand::u8(..)));
        let msg_key = self.msg_key(&padded, FROM_SERVER);
        let (key, iv) = self.calc_key(&msg_key, FROM_SERVER);
        aes::ige_encrypt(&mut padded, &key, &iv);
        let mut packet = Vec::with_capacity(24 + padded.len());
        packet.extend_from_slice(&self.key_id);
        packet.extend_from_slice(&msg_key);
        packet.extend_from_slice(&padded);
        packet
    }

    /// Test helper: encrypts as the client would (x = 0).
    #[cfg(test)]
    fn encrypt_as_client(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut buf = grammers_crypto::DequeBuffer::with_capacity(plaintext.len() + 64, 32);
        buf.extend(plaintext.iter().copied());
        grammers_crypto::encrypt_data_v2(&mut buf, &grammers_crypto::AuthKey::from_bytes(self.data));
        buf[..].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServerKey {
        let mut data = [0u8; 256];
        data.iter_mut().enumerate().for_each(|(i, b)| *b = (i * 7 + 3) as u8);
        ServerKey::new(data)
    }

    #[test]
    fn decrypts_what_the_grammers_client_encrypts() {
        let key = key();
        let plaintext: Vec<u8> = (0..64u8).collect();
        let packet = key.encrypt_as_client(&plaintext);
        let decrypted = key.decrypt_from_client(&packet).unwrap();
        assert_eq!(&decrypted[..64], &plaintext[..]);
    }

    #[test]
    fn the_grammers_client_decrypts_what_we_encrypt() {
        let key = key();
        let plaintext: Vec<u8> = (0..40u8).collect();
        let mut packet = key.encrypt_to_client(&plaintext);
        let auth_key = grammers_crypto::AuthKey::from_bytes(key.data);
        let decrypted = grammers_crypto::decrypt_data_v2(&mut packet, &auth_key).unwrap();
        assert_eq!(&decrypted[..40], &plaintext[..]);
        assert!(decrypted.len() >= 40 + 12 && decrypted.len() % 16 == 0);
    }

    #[test]
    fn rejects_other_keys_and_tampering() {
        let key = key();
        let mut packet = key.encrypt_as_client(&[1u8; 48]);
        packet[30] ^= 1;
        assert_eq!(key.decrypt_from_client(&packet), Err(CryptoError::BadMsgKey));
        packet[0] ^= 1;
        assert_eq!(key.decrypt_from_client(&packet), Err(CryptoError::UnknownKey));
        assert_eq!(key.decrypt_from_client(&packet[..40]), Err(CryptoError::BadLength));
    }
}
