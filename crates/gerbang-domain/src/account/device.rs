//! Devices an account logs in from, and the cool-off after a phone change (SPEC §3, seed 003).
//!
//! The app sends a device identifier of its own (an installation id); gerbang stores only its
//! digest. A login from a device not on the account's trusted list needs an OTP step-up, after
//! which the device is trusted; the participant can list and revoke trusted devices, and recovery
//! revokes them all.
//!
//! After any phone change, sensitive actions (bank-account change, benefit claim) are held for a
//! cool-off period: the usual SIM-swap and recycled-number defence.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::explain::Explain;
use crate::identity::IndonesianTimeZone;

/// Longest device identifier accepted (installation ids are UUIDs or similar).
const MAX_DEVICE_ID: usize = 128;
/// Longest device name kept (what the list shows: "Samsung Galaxy A14").
const MAX_DEVICE_NAME: usize = 64;

/// A device identifier as the app sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("the device identifier is missing")]
    Missing,
    #[error("the device identifier is longer than {MAX_DEVICE_ID} characters")]
    TooLong,
    #[error(
        "the device identifier holds characters other than letters, digits, '-', '_', '.', ':'"
    )]
    Characters,
}

impl Explain for DeviceError {
    fn code(&self) -> &'static str {
        match self {
            Self::Missing => "device_id_missing",
            Self::TooLong => "device_id_too_long",
            Self::Characters => "device_id_characters",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::Missing => "Identitas perangkat wajib dikirim oleh aplikasi.".into(),
            Self::TooLong => {
                format!("Identitas perangkat paling panjang {MAX_DEVICE_ID} karakter.")
            }
            Self::Characters => {
                "Identitas perangkat hanya boleh berisi huruf, angka, '-', '_', '.' dan ':'.".into()
            }
        }
    }

    fn message_en(&self) -> String {
        match self {
            Self::Missing => "The app must send a device identifier.".into(),
            Self::TooLong => format!("A device identifier has at most {MAX_DEVICE_ID} characters."),
            Self::Characters => {
                "A device identifier holds only letters, digits, '-', '_', '.' and ':'.".into()
            }
        }
    }
}

/// The stored form of a device identifier: SHA-256 of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceDigest([u8; 32]);

impl DeviceDigest {
    /// A digest as stored.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses the app's identifier and digests it.
    pub fn of(device_id: &str) -> Result<Self, DeviceError> {
        let id = device_id.trim();
        if id.is_empty() {
            return Err(DeviceError::Missing);
        }
        if id.chars().count() > MAX_DEVICE_ID {
            return Err(DeviceError::TooLong);
        }
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        {
            return Err(DeviceError::Characters);
        }
        Ok(Self(Sha256::digest(id.as_bytes()).into()))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The device's key as the device list shows it and revoking names it (64 hex digits).
    pub fn key(&self) -> String {
        super::hex(&self.0)
    }

    /// The first 8 bytes in hex: enough to tell devices apart in logs, rate keys and the trail.
    pub fn short(&self) -> String {
        super::hex(&self.0[..8])
    }
}

/// A device the participant has proven with an OTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedDevice {
    pub digest: DeviceDigest,
    /// What the app called it, cut to a displayable length.
    pub name: String,
    pub trusted_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// An account's trusted devices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedDevices {
    devices: Vec<TrustedDevice>,
}

impl TrustedDevices {
    /// Most devices kept: trusting one more forgets the least recently seen.
    pub const LIMIT: usize = 10;

    pub fn is_trusted(&self, digest: &DeviceDigest) -> bool {
        self.devices.iter().any(|device| device.digest == *digest)
    }

    /// Trusts `digest` after a successful step-up (or refreshes it if trusted already).
    pub fn trust(&mut self, digest: DeviceDigest, name: &str, now: DateTime<Utc>) {
        let name: String = name
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_DEVICE_NAME)
            .collect();
        if let Some(device) = self.devices.iter_mut().find(|d| d.digest == digest) {
            device.last_seen_at = now;
            device.name = name;
            return;
        }
        if self.devices.len() >= Self::LIMIT
            && let Some(oldest) = self
                .devices
                .iter()
                .enumerate()
                .min_by_key(|(_, device)| device.last_seen_at)
                .map(|(index, _)| index)
        {
            self.devices.remove(oldest);
        }
        self.devices.push(TrustedDevice {
            digest,
            name,
            trusted_at: now,
            last_seen_at: now,
        });
    }

    /// Records a login from a trusted device.
    pub fn seen(&mut self, digest: &DeviceDigest, now: DateTime<Utc>) {
        if let Some(device) = self.devices.iter_mut().find(|d| d.digest == *digest) {
            device.last_seen_at = device.last_seen_at.max(now);
        }
    }

    /// Forgets one device; `false` if it was not trusted.
    pub fn revoke(&mut self, digest: &DeviceDigest) -> bool {
        let before = self.devices.len();
        self.devices.retain(|device| device.digest != *digest);
        self.devices.len() != before
    }

    /// Forgets every device (recovery, a branch officer's reset).
    pub fn revoke_all(&mut self) -> usize {
        std::mem::take(&mut self.devices).len()
    }

    /// The devices, most recently seen first.
    pub fn list(&self) -> Vec<&TrustedDevice> {
        let mut list: Vec<&TrustedDevice> = self.devices.iter().collect();
        list.sort_by_key(|device| std::cmp::Reverse(device.last_seen_at));
        list
    }
}

/// The hold on sensitive actions after a phone change.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoolOffPolicy {
    pub hours: i64,
}

impl Default for CoolOffPolicy {
    fn default() -> Self {
        Self { hours: 24 }
    }
}

/// A sensitive action refused while the cool-off after a phone change lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sensitive actions are held until {until} after a phone change")]
pub struct CoolingOff {
    pub until: DateTime<Utc>,
}

impl CoolingOff {
    /// The refusal as told to the participant, on their clock.
    pub fn notice(self, zone: IndonesianTimeZone) -> CoolOffNotice {
        CoolOffNotice {
            until: self.until,
            zone,
        }
    }
}

/// [`CoolingOff`] with the participant's time zone, ready to be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoolOffNotice {
    pub until: DateTime<Utc>,
    pub zone: IndonesianTimeZone,
}

impl Explain for CoolOffNotice {
    fn code(&self) -> &'static str {
        "cooling_off_after_phone_change"
    }

    fn message_id(&self) -> String {
        format!(
            "Demi keamanan, transaksi penting ditunda setelah nomor HP diganti. Anda dapat \
             melakukannya lagi setelah pukul {}.",
            self.zone.format_until(self.until, false)
        )
    }

    fn message_en(&self) -> String {
        format!(
            "For your security, sensitive actions are held after a phone number change. You can \
             do this again after {}.",
            self.zone.format_until(self.until, true)
        )
    }
}

impl CoolOffPolicy {
    /// Whether a sensitive action may proceed at `now`, given when the phone last changed.
    pub fn check(
        &self,
        phone_changed_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), CoolingOff> {
        match phone_changed_at {
            Some(changed) if now < changed + Duration::hours(self.hours) => Err(CoolingOff {
                until: changed + Duration::hours(self.hours),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn device_identifiers_are_checked_and_digested() {
        let a = DeviceDigest::of("3f2c9a1e-7b4d-4c1a-9e2f-0a1b2c3d4e5f").unwrap();
        assert_eq!(
            DeviceDigest::of(" 3f2c9a1e-7b4d-4c1a-9e2f-0a1b2c3d4e5f ").unwrap(),
            a
        );
        assert_ne!(DeviceDigest::of("another-device").unwrap(), a);
        assert_eq!(DeviceDigest::of("  "), Err(DeviceError::Missing));
        assert_eq!(
            DeviceDigest::of(&"x".repeat(129)),
            Err(DeviceError::TooLong)
        );
        assert_eq!(
            DeviceDigest::of("id with spaces"),
            Err(DeviceError::Characters)
        );
        assert_eq!(DeviceDigest::of("<script>"), Err(DeviceError::Characters));
        assert_eq!(DeviceError::TooLong.code(), "device_id_too_long");
    }

    #[test]
    fn trusting_listing_and_revoking_devices() {
        let mut devices = TrustedDevices::default();
        let phone = DeviceDigest::of("phone-1").unwrap();
        let tablet = DeviceDigest::of("tablet-1").unwrap();
        assert!(!devices.is_trusted(&phone));
        devices.trust(phone, "Samsung Galaxy A14", t0());
        devices.trust(tablet, "Tab\u{7}let", t0() + Duration::hours(1));
        assert!(devices.is_trusted(&phone));
        let names: Vec<&str> = devices.list().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["Tablet", "Samsung Galaxy A14"]);
        devices.seen(&phone, t0() + Duration::hours(2));
        assert_eq!(devices.list()[0].digest, phone);
        assert!(devices.revoke(&tablet));
        assert!(!devices.revoke(&tablet));
        assert_eq!(devices.revoke_all(), 1);
        assert!(!devices.is_trusted(&phone));
    }

    #[test]
    fn trusting_past_the_limit_forgets_the_least_recently_seen() {
        let mut devices = TrustedDevices::default();
        for i in 0..TrustedDevices::LIMIT {
            let digest = DeviceDigest::of(&format!("device-{i}")).unwrap();
            devices.trust(digest, "d", t0() + Duration::minutes(i as i64));
        }
        let first = DeviceDigest::of("device-0").unwrap();
        devices.seen(&first, t0() + Duration::hours(1));
        let newcomer = DeviceDigest::of("device-new").unwrap();
        devices.trust(newcomer, "d", t0() + Duration::hours(2));
        assert_eq!(devices.list().len(), TrustedDevices::LIMIT);
        assert!(devices.is_trusted(&first), "seen recently, kept");
        assert!(!devices.is_trusted(&DeviceDigest::of("device-1").unwrap()));
        assert!(devices.is_trusted(&newcomer));
    }

    #[test]
    fn sensitive_actions_wait_a_day_after_a_phone_change() {
        let policy = CoolOffPolicy::default();
        assert_eq!(policy.check(None, t0()), Ok(()));
        let until = t0() + Duration::hours(24);
        assert_eq!(
            policy.check(Some(t0()), t0() + Duration::hours(23)),
            Err(CoolingOff { until })
        );
        assert_eq!(policy.check(Some(t0()), until), Ok(()));
        let notice = CoolingOff { until }.notice(IndonesianTimeZone::Wita);
        assert_eq!(notice.code(), "cooling_off_after_phone_change");
        assert!(
            notice.message_id().contains("09.00 WITA, 2 Desember 2026"),
            "{}",
            notice.message_id()
        );
        crate::account::assert_documented(&notice);
        for error in [
            DeviceError::Missing,
            DeviceError::TooLong,
            DeviceError::Characters,
        ] {
            crate::account::assert_documented(&error);
        }
    }
}
