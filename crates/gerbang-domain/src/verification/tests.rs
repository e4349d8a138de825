use chrono::{DateTime, Duration, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::code::{CodeKey, OtpCode};
use super::purpose::Purpose;
use super::*;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn key() -> CodeKey {
    CodeKey::new([3; 32])
}

fn phone() -> Destination {
    Destination::Phone(MobileNumber::parse("081234567890").unwrap())
}

fn code(digits: &str) -> OtpCode {
    OtpCode::parse(digits, CodeLength::default()).unwrap()
}

fn send(verification: &VerificationId, digits: &str, at: DateTime<Utc>) -> CodeSend {
    CodeSend {
        channel: Channel::Sms,
        destination: phone(),
        issued_at: at,
        handed_off_at: None,
        digest: key().digest(verification.as_bytes(), b"registration", &code(digits)),
    }
}

fn verification(digits: &str) -> Verification {
    let id = VerificationId::random(&mut StdRng::seed_from_u64(1));
    Verification {
        id,
        client: "app".into(),
        purpose: Purpose::Registration,
        action: None,
        action_hint: None,
        locale: Locale::Id,
        flow: "registration/+6281234567890".into(),
        binding: b"registration".to_vec(),
        account: None,
        nik: None,
        created_at: t0(),
        sends: vec![send(&id, digits, t0())],
        wrong_attempts: 0,
        outcome: None,
    }
}

fn typed(v: &Verification, digits: &str) -> CodeDigest {
    key().digest(v.id.as_bytes(), b"registration", &code(digits))
}

#[test]
fn the_right_code_verifies_once_and_a_replay_is_refused() {
    let policy = OtpPolicy::default();
    let mut v = verification("123456");
    let digest = typed(&v, "123456");
    assert!(
        v.check(&digest, &policy, t0() + Duration::seconds(30))
            .is_ok()
    );
    assert_eq!(
        v.status(&policy, t0() + Duration::seconds(31)),
        Status::Verified
    );
    assert_eq!(
        v.check(&digest, &policy, t0() + Duration::seconds(32)),
        Err(VerificationError::AlreadyUsed)
    );
    assert_eq!(v.wrong_attempts, 0);
}

#[test]
fn five_wrong_entries_kill_the_code_even_the_right_one_afterwards() {
    let policy = OtpPolicy::default();
    let mut v = verification("123456");
    let wrong = typed(&v, "000000");
    for left in (1..=4).rev() {
        assert_eq!(
            v.check(&wrong, &policy, t0()),
            Err(VerificationError::Incorrect {
                attempts_left: left
            })
        );
    }
    assert_eq!(
        v.check(&wrong, &policy, t0()),
        Err(VerificationError::AttemptsExhausted)
    );
    assert_eq!(v.status(&policy, t0()), Status::Exhausted);
    let right = typed(&v, "123456");
    assert_eq!(
        v.check(&right, &policy, t0()),
        Err(VerificationError::AttemptsExhausted)
    );
    assert_eq!(v.wrong_attempts, 5);
}

#[test]
fn lifetime_counts_five_minutes_from_hand_off_not_from_the_request() {
    let policy = OtpPolicy::default();
    let mut v = verification("123456");
    // Two minutes in the queue do not eat the five minutes.
    v.record_handoff(0, t0() + Duration::minutes(2));
    let right = typed(&v, "123456");
    let mut late = v.clone();
    assert_eq!(late.expires_at(&policy), t0() + Duration::minutes(7));
    assert!(
        v.check(
            &right,
            &policy,
            t0() + Duration::minutes(7) - Duration::seconds(1)
        )
        .is_ok()
    );
    assert_eq!(
        late.check(&right, &policy, t0() + Duration::minutes(7)),
        Err(VerificationError::Expired)
    );
}

#[test]
fn a_code_stuck_in_the_queue_dies_ten_minutes_after_the_request() {
    let policy = OtpPolicy::default();
    let mut v = verification("123456");
    assert_eq!(v.expires_at(&policy), t0() + Duration::minutes(10));
    // Handed off at minute 8: five minutes would reach minute 13, the cap stops it at 10.
    v.record_handoff(0, t0() + Duration::minutes(8));
    assert_eq!(v.expires_at(&policy), t0() + Duration::minutes(10));
    assert_eq!(
        v.status(&policy, t0() + Duration::minutes(10)),
        Status::Expired
    );
    // Only the first hand-off counts.
    v.record_handoff(0, t0() + Duration::minutes(9));
    assert_eq!(v.sends[0].handed_off_at, Some(t0() + Duration::minutes(8)));
}

#[test]
fn the_resend_ladder_is_60_then_120_then_300_seconds() {
    let policy = OtpPolicy::default();
    let mut v = verification("111111");
    let mut at = t0();
    for step in [60, 120, 300, 300] {
        let next = at + Duration::seconds(step);
        assert_eq!(v.next_resend_at(&policy), next);
        assert_eq!(
            v.may_resend(&policy, next - Duration::seconds(1), false),
            Err(VerificationError::ResendCountdown { until: next })
        );
        // Pressing again is harmless: the same instant comes back.
        assert_eq!(
            v.may_resend(&policy, at + Duration::seconds(1), false),
            Err(VerificationError::ResendCountdown { until: next })
        );
        assert!(v.may_resend(&policy, next, false).is_ok());
        let id = v.id;
        v.sends.push(send(&id, "222222", next));
        at = next;
    }
}

#[test]
fn an_earlier_code_still_works_after_a_resend_until_its_own_expiry() {
    let policy = OtpPolicy::default();
    let mut v = verification("111111");
    v.record_handoff(0, t0());
    let id = v.id;
    v.sends
        .push(send(&id, "222222", t0() + Duration::seconds(60)));
    v.record_handoff(1, t0() + Duration::seconds(60));
    let first = typed(&v, "111111");
    let mut early = v.clone();
    assert!(
        early
            .check(&first, &policy, t0() + Duration::seconds(299))
            .is_ok()
    );
    // After the first code's five minutes, typing it says so and costs no attempt.
    assert_eq!(
        v.check(&first, &policy, t0() + Duration::seconds(300)),
        Err(VerificationError::CodeExpired)
    );
    assert_eq!(v.wrong_attempts, 0);
    let second = typed(&v, "222222");
    assert!(
        v.check(&second, &policy, t0() + Duration::seconds(359))
            .is_ok()
    );
}

#[test]
fn a_code_for_another_purpose_is_a_wrong_code() {
    let policy = OtpPolicy::default();
    let mut v = verification("123456");
    let other_purpose = key().digest(v.id.as_bytes(), b"recovery", &code("123456"));
    assert_eq!(
        v.check(&other_purpose, &policy, t0()),
        Err(VerificationError::Incorrect { attempts_left: 4 })
    );
}

#[test]
fn cancelled_and_expired_verifications_refuse_checks_without_counting() {
    let policy = OtpPolicy::default();
    let mut v = verification("123456");
    let right = typed(&v, "123456");
    let mut expired = v.clone();
    assert_eq!(
        expired.check(&right, &policy, t0() + Duration::minutes(10)),
        Err(VerificationError::Expired)
    );
    assert!(v.cancel(&policy, t0()).is_ok());
    assert_eq!(
        v.check(&right, &policy, t0()),
        Err(VerificationError::Cancelled)
    );
    assert_eq!(v.cancel(&policy, t0()), Err(VerificationError::Cancelled));
    assert_eq!(v.wrong_attempts + expired.wrong_attempts, 0);
}

#[test]
fn an_expired_verification_may_be_resent_but_a_verified_one_may_not() {
    let policy = OtpPolicy::default();
    let mut v = verification("123456");
    assert!(
        v.may_resend(&policy, t0() + Duration::minutes(11), false)
            .is_ok()
    );
    let right = typed(&v, "123456");
    v.check(&right, &policy, t0()).unwrap();
    assert_eq!(
        v.may_resend(&policy, t0() + Duration::minutes(11), false),
        Err(VerificationError::AlreadyUsed)
    );
}

#[test]
fn new_ids_sort_by_creation_time_and_differ_within_a_millisecond() {
    let mut rng = StdRng::seed_from_u64(9);
    let a = VerificationId::new(t0(), &mut rng);
    let b = VerificationId::new(t0(), &mut rng);
    let c = VerificationId::new(t0() + Duration::milliseconds(1), &mut rng);
    assert_ne!(a, b);
    assert!(a.max(b) < c);
}

#[test]
fn ids_round_trip_and_refuse_anything_else() {
    let id = VerificationId::random(&mut StdRng::seed_from_u64(5));
    let text = id.to_string();
    assert!(text.starts_with("vf_") && text.len() == 35);
    assert_eq!(VerificationId::parse(&text), Ok(id));
    for bad in [
        "",
        "vf_",
        "vf_XYZ",
        &text.to_uppercase(),
        &text[..34],
        "vf_0000000000000000000000000000000g",
    ] {
        assert_eq!(
            VerificationId::parse(bad),
            Err(VerificationError::IdMalformed),
            "{bad}"
        );
    }
}

#[test]
fn a_verification_round_trips_through_json_without_the_code() {
    let v = verification("987654");
    let json = serde_json::to_string(&v).unwrap();
    assert!(!json.contains("987654"));
    // Bytes are stored as hex, not as arrays of numbers.
    assert!(
        json.contains(r#""binding":"726567697374726174696f6e""#),
        "{json}"
    );
    let back: Verification = serde_json::from_str(&json).unwrap();
    assert_eq!(back, v);
    let odd = json.replace("726567697374726174696f6e", "7265z");
    assert!(serde_json::from_str::<Verification>(&odd).is_err());
}

#[test]
fn channels_reach_only_their_kind_of_destination() {
    let email = Destination::Email(Email::parse("budi@example.com").unwrap());
    assert!(Channel::Email.reaches(&email));
    assert!(!Channel::Sms.reaches(&email));
    assert!(Channel::Whatsapp.reaches(&phone()));
    assert!(!Channel::Email.reaches(&phone()));
    assert_eq!(phone().number_block(), Some("+628123456"));
    assert_eq!(format!("{:?}", phone()), "Destination(0812****7890)");
}

#[test]
fn during_a_key_rotation_a_code_sent_under_the_old_key_verifies_and_a_wrong_one_counts_once() {
    let policy = OtpPolicy::default();
    // Sent under key() (the old key); typed after the switch to a new key with key() as previous.
    let rotating = CodeKey::new([4; 32]).with_previous(Some([3; 32]));
    let mut v = verification("123456");
    let wrong = rotating.candidates(v.id.as_bytes(), b"registration", &code("654321"));
    assert_eq!(
        v.check_any(&wrong, &policy, t0() + Duration::seconds(10)),
        Err(VerificationError::Incorrect {
            attempts_left: policy.max_wrong_attempts - 1
        })
    );
    assert_eq!(v.wrong_attempts, 1, "two candidates, one attempt");
    let right = rotating.candidates(v.id.as_bytes(), b"registration", &code("123456"));
    assert!(
        v.check_any(&right, &policy, t0() + Duration::seconds(20))
            .is_ok()
    );
    // Without the previous key the same code no longer matches.
    let mut again = verification("123456");
    let new_only =
        CodeKey::new([4; 32]).digest(again.id.as_bytes(), b"registration", &code("123456"));
    assert!(
        again
            .check(&new_only, &policy, t0() + Duration::seconds(20))
            .is_err()
    );
}
