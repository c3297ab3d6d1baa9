//! The first login, served like Telegram serves it, so `tribute-assistant
//! login` can be rehearsed end to end: `auth.sendCode` (the server picks a
//! five-digit code and shows it the way Telegram shows it in the account's
//! other apps: here a [`SentCode`] for whoever runs the server),
//! `auth.signIn` (wrong code: `PHONE_CODE_INVALID`; a phone without an
//! account: `auth.authorizationSignUpRequired`; the account has a 2FA
//! password: `SESSION_PASSWORD_NEEDED`), `account.getPassword` and
//! `auth.checkPassword` with SRP-2048 as Telegram specifies it (the server
//! never sees the password; a wrong one: `PASSWORD_HASH_INVALID`).
//!
//! What cannot be rehearsed is the key exchange before all this: grammers
//! only trusts Telegram's own RSA keys, so the server and the client share
//! the transport key in advance (the session file the testbed writes holds
//! that key and the server's address, and nobody logged in). Until the
//! login succeeds every other method answers `401 AUTH_KEY_UNREGISTERED`,
//! as Telegram does for a key nobody has logged in with.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use grammers_tl_types::{self as tl, Serializable};
use hmac::{Hmac, Mac};
use num_bigint::BigUint;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use tokio::sync::watch;

/// Telegram's 2048-bit safe prime for SRP and DH (g = 3), as every client
/// checks it (`grammers_crypto::two_factor_auth::check_p_and_g`).
const P_HEX: &str = "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d22530f4dbfa336f6e0ac925139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f642477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b";
const G: u32 = 3;
/// PBKDF2 rounds of Telegram's password KDF.
const KDF_ROUNDS: u32 = 100_000;
/// Wrong codes accepted for one `auth.sendCode` before the code expires.
const CODE_TRIES: u32 = 5;

/// The test account's login: its phone number and 2FA password.
#[derive(Clone)]
pub struct LoginAccount {
    /// In international format; compared by its digits only.
    pub phone: String,
    /// `None`: no two-step verification.
    pub password: Option<String>,
    pub hint: Option<String>,
}

impl std::fmt::Debug for LoginAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginAccount")
            .field("phone", &self.phone)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("hint", &self.hint)
            .finish()
    }
}

/// A login code "sent" to the account, for whoever rehearses the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCode {
    pub phone: String,
    pub code: String,
}

struct Pending {
    phone_digits: String,
    phone_code_hash: String,
    code: String,
    tries: u32,
    /// The code was right and only the password is missing.
    code_ok: bool,
}

/// One SRP challenge (`account.getPassword`).
struct Challenge {
    srp_id: i64,
    b: BigUint,
    g_b: [u8; 256],
}

/// The password as the server stores it: never the password itself.
struct Verifier {
    salt1: Vec<u8>,
    salt2: Vec<u8>,
    /// v = g^x mod p, x = PH2(password, salt1, salt2).
    v: BigUint,
    hint: Option<String>,
}

/// The login state of the server's one transport key.
pub(crate) struct LoginState {
    authorised: AtomicBool,
    account_digits: String,
    verifier: Option<Verifier>,
    pending: Mutex<Option<Pending>>,
    challenges: Mutex<Vec<Challenge>>,
    codes: watch::Sender<Option<SentCode>>,
}

/// What a login method answers.
pub(crate) enum LoginReply {
    Ok(Vec<u8>),
    Err(i32, &'static str),
    /// Logged in: the server then serves the account.
    Authorised,
}

fn digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

fn p() -> BigUint {
    BigUint::parse_bytes(P_HEX.as_bytes(), 16).expect("a hex constant")
}

fn pad256(n: &BigUint) -> [u8; 256] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; 256];
    out[256 - bytes.len()..].copy_from_slice(&bytes);
    out
}

fn h(parts: &[&[u8]]) -> [u8; 32] {
    let mut d = Sha256::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().into()
}

/// PH2(password, salt1, salt2) of Telegram's password KDF.
fn ph2(password: &[u8], salt1: &[u8], salt2: &[u8]) -> [u8; 32] {
    let sh = |data: &[u8], salt: &[u8]| h(&[salt, data, salt]);
    let ph1 = sh(&sh(password, salt1), salt2);
    // PBKDF2-HMAC-SHA512, one 64-byte block.
    let mac = Hmac::<Sha512>::new_from_slice(&ph1).expect("HMAC takes any key");
    let mut u: [u8; 64] =
        mac.clone().chain_update(salt1).chain_update(1u32.to_be_bytes()).finalize().into_bytes().into();
    let mut dk = u;
    for _ in 1..KDF_ROUNDS {
        u = mac.clone().chain_update(u).finalize().into_bytes().into();
        dk.iter_mut().zip(u.iter()).for_each(|(d, x)| *d ^= x);
    }
    sh(&dk, salt2)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    b.iter_mut().for_each(|x| *x = fastrand::u8(..));
    b
}

impl Verifier {
    fn new(password: &str, hint: Option<String>) -> Self {
        let salt1 = random_bytes::<40>().to_vec();
        let salt2 = random_bytes::<16>().to_vec();
        let x = BigUint::from_bytes_be(&ph2(password.as_bytes(), &salt1, &salt2));
        let v = BigUint::from(G).modpow(&x, &p());
        Self { salt1, salt2, v, hint }
    }

    fn k(p_bytes: &[u8]) -> BigUint {
        let mut g = [0u8; 256];
        g[255] = G as u8;
        BigUint::from_bytes_be(&h(&[p_bytes, &g]))
    }

    fn challenge(&self) -> Challenge {
        let p = p();
        let b = BigUint::from_bytes_be(&random_bytes::<256>()) % &p;
        let g_b = (Self::k(&pad256(&p)) * &self.v + BigUint::from(G).modpow(&b, &p)) % &p;
        Challenge { srp_id: fastrand::i64(1..), b, g_b: pad256(&g_b) }
    }

    /// Whether `m1` proves the password for this challenge and the client's `g_a`.
    fn check(&self, c: &Challenge, g_a: &[u8], m1: &[u8]) -> bool {
        let p = p();
        let p_bytes = pad256(&p);
        let big_g_a = BigUint::from_bytes_be(g_a);
        if g_a.len() > 256 || big_g_a <= BigUint::from(1u8) || big_g_a >= &p - 1u8 {
            return false;
        }
        let g_a = pad256(&big_g_a);
        let u = BigUint::from_bytes_be(&h(&[&g_a, &c.g_b]));
        let s = (big_g_a * self.v.modpow(&u, &p)).modpow(&c.b, &p);
        let k_a = h(&[&pad256(&s)]);
        let mut g = [0u8; 256];
        g[255] = G as u8;
        let (hp, hg) = (h(&[&p_bytes]), h(&[&g]));
        let xor: Vec<u8> = hp.iter().zip(hg.iter()).map(|(a, b)| a ^ b).collect();
        let expected = h(&[&xor, &h(&[&self.salt1]), &h(&[&self.salt2]), &g_a, &c.g_b, &k_a]);
        m1.len() == 32 && bool::from(expected.ct_eq(m1))
    }
}

impl LoginState {
    /// Already logged in: the server serves the account from the start.
    pub(crate) fn authorised() -> Self {
        Self::build(true, None)
    }

    /// Nobody logged in yet: only the login methods are served.
    pub(crate) fn awaiting(account: LoginAccount) -> Self {
        Self::build(false, Some(account))
    }

    fn build(authorised: bool, account: Option<LoginAccount>) -> Self {
        let (codes, _) = watch::channel(None);
        let (account_digits, verifier) = match account {
            Some(a) => (digits(&a.phone), a.password.map(|pw| Verifier::new(&pw, a.hint))),
            None => (String::new(), None),
        };
        Self {
            authorised: AtomicBool::new(authorised),
            account_digits,
            verifier,
            pending: Mutex::new(None),
            challenges: Mutex::new(Vec::new()),
            codes,
        }
    }

    pub(crate) fn is_authorised(&self) -> bool {
        self.authorised.load(Ordering::SeqCst)
    }

    pub(crate) fn set_authorised(&self) {
        self.authorised.store(true, Ordering::SeqCst);
    }

    /// The newest code sent (`None` before the first).
    pub(crate) fn codes(&self) -> watch::Receiver<Option<SentCode>> {
        self.codes.subscribe()
    }

    /// Whether `constructor` is a method served before the login.
    pub(crate) fn is_login_method(constructor: u32) -> bool {
        use tl::functions as f;
        use tl::Identifiable;
        [
            f::auth::SendCode::CONSTRUCTOR_ID,
            f::auth::SignIn::CONSTRUCTOR_ID,
            f::account::GetPassword::CONSTRUCTOR_ID,
            f::auth::CheckPassword::CONSTRUCTOR_ID,
            f::help::GetConfig::CONSTRUCTOR_ID,
        ]
        .contains(&constructor)
    }

    pub(crate) fn send_code(&self, req: tl::functions::auth::SendCode) -> LoginReply {
        let phone_digits = digits(&req.phone_number);
        if !(7..=15).contains(&phone_digits.len())
            || req.phone_number.chars().any(|c| !(c.is_ascii_digit() || " +-()".contains(c)))
        {
            return LoginReply::Err(400, "PHONE_NUMBER_INVALID");
        }
        let code = format!("{:05}", fastrand::u32(0..100_000));
        let phone_code_hash = format!("{:016x}", fastrand::u64(..));
        tracing::info!(phone = %req.phone_number, "testbed: login code sent");
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(Pending {
            phone_digits,
            phone_code_hash: phone_code_hash.clone(),
            code: code.clone(),
            tries: 0,
            code_ok: false,
        });
        self.codes.send_replace(Some(SentCode { phone: req.phone_number.clone(), code }));
        LoginReply::Ok(
            tl::enums::auth::SentCode::Code(tl::types::auth::SentCode {
                r#type: tl::types::auth::SentCodeTypeApp { length: 5 }.into(),
                phone_code_hash,
                next_type: None,
                timeout: None,
            })
            .to_bytes(),
        )
    }

    /// `auth.signIn`: the code, then the password if the account has one.
    pub(crate) fn sign_in(&self, req: tl::functions::auth::SignIn) -> LoginReply {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = pending.as_mut() else {
            return LoginReply::Err(400, "PHONE_CODE_EXPIRED");
        };
        if p.phone_code_hash != req.phone_code_hash || p.phone_digits != digits(&req.phone_number) {
            return LoginReply::Err(400, "PHONE_CODE_HASH_EMPTY");
        }
        match req.phone_code.as_deref() {
            None | Some("") => return LoginReply::Err(400, "PHONE_CODE_EMPTY"),
            Some(code) if code.trim() != p.code => {
                p.tries += 1;
                if p.tries >= CODE_TRIES {
                    *pending = None;
                    return LoginReply::Err(400, "PHONE_CODE_EXPIRED");
                }
                return LoginReply::Err(400, "PHONE_CODE_INVALID");
            }
            Some(_) => {}
        }
        if p.phone_digits != self.account_digits {
            *pending = None;
            return LoginReply::Ok(
                tl::enums::auth::Authorization::SignUpRequired(tl::types::auth::AuthorizationSignUpRequired {
                    terms_of_service: None,
                })
                .to_bytes(),
            );
        }
        if self.verifier.is_some() {
            p.code_ok = true;
            return LoginReply::Err(401, "SESSION_PASSWORD_NEEDED");
        }
        *pending = None;
        LoginReply::Authorised
    }

    pub(crate) fn get_password(&self) -> LoginReply {
        let Some(verifier) = &self.verifier else {
            return LoginReply::Ok(password_info(None, None).to_bytes());
        };
        let challenge = verifier.challenge();
        let info = password_info(Some((verifier, &challenge)), verifier.hint.clone());
        let mut challenges = self.challenges.lock().unwrap_or_else(|e| e.into_inner());
        challenges.push(challenge);
        // A client asks again after a wrong password at most; keep a few.
        if challenges.len() > 8 {
            challenges.remove(0);
        }
        LoginReply::Ok(info.to_bytes())
    }

    pub(crate) fn check_password(&self, req: tl::functions::auth::CheckPassword) -> LoginReply {
        let (Some(verifier), tl::enums::InputCheckPasswordSrp::Srp(srp)) = (&self.verifier, req.password) else {
            return LoginReply::Err(400, "PASSWORD_HASH_INVALID");
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !pending.as_ref().is_some_and(|p| p.code_ok) {
            return LoginReply::Err(400, "PHONE_CODE_EMPTY");
        }
        let challenges = self.challenges.lock().unwrap_or_else(|e| e.into_inner());
        let Some(challenge) = challenges.iter().find(|c| c.srp_id == srp.srp_id) else {
            return LoginReply::Err(400, "SRP_ID_INVALID");
        };
        if !verifier.check(challenge, &srp.a, &srp.m1) {
            return LoginReply::Err(400, "PASSWORD_HASH_INVALID");
        }
        *pending = None;
        LoginReply::Authorised
    }
}

fn password_info(srp: Option<(&Verifier, &Challenge)>, hint: Option<String>) -> tl::enums::account::Password {
    let current_algo = srp.map(|(v, _)| {
        tl::types::PasswordKdfAlgoSha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow {
            salt1: v.salt1.clone(),
            salt2: v.salt2.clone(),
            g: G as i32,
            p: pad256(&p()).to_vec(),
        }
        .into()
    });
    tl::types::account::Password {
        has_recovery: false,
        has_secure_values: false,
        has_password: srp.is_some(),
        current_algo,
        srp_b: srp.map(|(_, c)| c.g_b.to_vec()),
        srp_id: srp.map(|(_, c)| c.srp_id),
        hint,
        email_unconfirmed_pattern: None,
        new_algo: tl::enums::PasswordKdfAlgo::Unknown,
        new_secure_algo: tl::enums::SecurePasswordKdfAlgo::Unknown,
        secure_random: random_bytes::<256>().to_vec(),
        pending_reset_date: None,
        login_email_pattern: None,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's side is grammers' own (`calculate_2fa`), so the server
    /// is checked against the implementation real Telegram accepts.
    fn client_proof(info: &tl::types::account::Password, password: &str) -> (Vec<u8>, Vec<u8>) {
        let Some(tl::enums::PasswordKdfAlgo::Sha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow(algo)) =
            &info.current_algo
        else {
            panic!("the algorithm Telegram uses")
        };
        let (m1, g_a) = grammers_crypto::two_factor_auth::calculate_2fa(
            &algo.salt1,
            &algo.salt2,
            &algo.p,
            &algo.g,
            info.srp_b.clone().unwrap(),
            info.secure_random.clone(),
            password,
        );
        (m1.to_vec(), g_a.to_vec())
    }

    #[test]
    fn srp_accepts_the_password_and_only_it() {
        let verifier = Verifier::new("correct horse", Some("a horse".into()));
        let challenge = verifier.challenge();
        let tl::enums::account::Password::Password(info) =
            password_info(Some((&verifier, &challenge)), verifier.hint.clone());
        let algo_ok = match &info.current_algo {
            Some(tl::enums::PasswordKdfAlgo::Sha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow(a)) => {
                grammers_crypto::two_factor_auth::check_p_and_g(&a.p, &a.g)
            }
            _ => false,
        };
        assert!(algo_ok, "clients check p and g");
        let (m1, g_a) = client_proof(&info, "correct horse");
        assert!(verifier.check(&challenge, &g_a, &m1));
        let (m1, g_a) = client_proof(&info, "correct hors");
        assert!(!verifier.check(&challenge, &g_a, &m1));
        let mut tampered = client_proof(&info, "correct horse");
        tampered.0[0] ^= 1;
        assert!(!verifier.check(&challenge, &tampered.1, &tampered.0));
    }

    #[test]
    fn codes_are_checked_and_expire() {
        let state = LoginState::awaiting(LoginAccount { phone: "+999 66 2 1000".into(), password: None, hint: None });
        let send = |phone: &str| {
            state.send_code(tl::functions::auth::SendCode {
                phone_number: phone.into(),
                api_id: 1,
                api_hash: "x".into(),
                settings: tl::types::CodeSettings {
                    allow_flashcall: false,
                    current_number: false,
                    allow_app_hash: false,
                    allow_missed_call: false,
                    allow_firebase: false,
                    unknown_number: false,
                    logout_tokens: None,
                    token: None,
                    app_sandbox: None,
                }
                .into(),
            })
        };
        assert!(matches!(send("call me"), LoginReply::Err(400, "PHONE_NUMBER_INVALID")));
        let LoginReply::Ok(bytes) = send("+9996621000") else { panic!("a code") };
        let sent: tl::enums::auth::SentCode = tl::Deserializable::from_bytes(&bytes).expect("auth.sentCode");
        let tl::enums::auth::SentCode::Code(sent) = sent else { panic!("a code") };
        let code = state.codes().borrow().clone().expect("shown").code;
        let sign_in = |code: &str| {
            state.sign_in(tl::functions::auth::SignIn {
                phone_number: "+999 66 2 1000".into(),
                phone_code_hash: sent.phone_code_hash.clone(),
                phone_code: Some(code.into()),
                email_verification: None,
            })
        };
        let wrong = if code == "00000" { "11111" } else { "00000" };
        assert!(matches!(sign_in(wrong), LoginReply::Err(400, "PHONE_CODE_INVALID")));
        assert!(!state.is_authorised());
        assert!(matches!(sign_in(&code), LoginReply::Authorised));
        // The code is used up.
        assert!(matches!(sign_in(&code), LoginReply::Err(400, "PHONE_CODE_EXPIRED")));
    }
}
