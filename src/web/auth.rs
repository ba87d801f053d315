//! Basic auth against `basic_auth_users` (bcrypt hashes).
//!
//! bcrypt is slow on purpose (cost 10 is tens of milliseconds), too slow to run for every
//! scrape: a successful check is remembered per user as the SHA-256 of the password given
//! (never the password), compared in constant time. A verification runs on a blocking thread,
//! one at a time (a flood of wrong passwords costs one core, not all), and an unknown user
//! costs a verification too, so that timing does not tell which users exist.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hyper::header::HeaderValue;
use subtle::ConstantTimeEq;

/// The users and the passwords already verified.
#[derive(Debug)]
pub struct Users {
    hashes: BTreeMap<String, String>,
    /// user -> SHA-256 of the password last verified for them.
    verified: Mutex<HashMap<String, [u8; 32]>>,
    /// One bcrypt verification at a time.
    slot: tokio::sync::Semaphore,
}

/// The realm sent in `WWW-Authenticate`.
pub const CHALLENGE: &str = "Basic realm=\"hubble-noise\"";

fn digest(password: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, password);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// `user` and `password` of an `Authorization: Basic ...` header.
pub fn credentials(header: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let value = header.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

impl Users {
    /// The users of `basic_auth_users` (hashes already checked for their form).
    pub fn new(hashes: BTreeMap<String, String>) -> Self {
        Self {
            hashes,
            verified: Mutex::new(HashMap::new()),
            slot: tokio::sync::Semaphore::new(1),
        }
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether there are none (then nothing is protected).
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    fn remembered(&self, user: &str, d: &[u8; 32]) -> bool {
        let Ok(v) = self.verified.lock() else {
            return false;
        };
        v.get(user).is_some_and(|known| bool::from(known.ct_eq(d)))
    }

    /// Whether the `Authorization` header holds a valid user and password.
    pub async fn check(self: &Arc<Self>, header: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = header.and_then(credentials) else {
            return false;
        };
        let d = digest(&password);
        if self.remembered(&user, &d) {
            return true;
        }
        let (hash, known) = match self.hashes.get(&user) {
            Some(h) => (h.clone(), true),
            // Same cost as a real user's check.
            None => match self.hashes.values().next() {
                Some(h) => (h.clone(), false),
                None => return false,
            },
        };
        let Ok(_permit) = self.slot.acquire().await else {
            return false;
        };
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash))
            .await
            .is_ok_and(|r| r.unwrap_or(false))
            && known;
        if ok {
            if let Ok(mut v) = self.verified.lock() {
                v.insert(user, d);
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_split_at_the_first_colon() {
        let h = HeaderValue::from_static("Basic YWxpY2U6czNjcjN0Onllcw==");
        assert_eq!(
            credentials(&h),
            Some(("alice".into(), b"s3cr3t:yes".to_vec()))
        );
        let lower = HeaderValue::from_static("basic YWxpY2U6eA==");
        assert_eq!(credentials(&lower), Some(("alice".into(), b"x".to_vec())));
        assert_eq!(credentials(&HeaderValue::from_static("Bearer abc")), None);
        assert_eq!(credentials(&HeaderValue::from_static("Basic !!!")), None);
        assert_eq!(
            credentials(&HeaderValue::from_static("Basic YWxpY2U=")),
            None
        );
    }

    #[tokio::test]
    async fn right_password_passes_and_is_remembered_wrong_ones_fail() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let users = Arc::new(Users::new(BTreeMap::from([("alice".into(), hash)])));
        let basic = |s: &str| {
            let enc = base64::engine::general_purpose::STANDARD.encode(s);
            HeaderValue::from_str(&format!("Basic {enc}")).unwrap()
        };
        assert!(!users.check(None).await);
        assert!(!users.check(Some(&basic("alice:nope"))).await);
        assert!(!users.check(Some(&basic("bob:pw"))).await);
        assert!(users.check(Some(&basic("alice:pw"))).await);
        assert!(users.remembered("alice", &digest(b"pw")));
        assert!(users.check(Some(&basic("alice:pw"))).await);
        assert!(!users.check(Some(&basic("alice:pw2"))).await);
        assert!(!users.remembered("bob", &digest(b"pw")));
    }
}
