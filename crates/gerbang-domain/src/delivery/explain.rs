//! What the participant (and the agent helping them) is told about one delivery attempt: what
//! happened and what to do next, worded for the channel the message went over.
//!
//! The same cause reads differently per channel: a full inbox is the phone's SMS memory for an SMS,
//! the mailbox for an email (SMTP 552). Advice to switch channel names only the channels the
//! participant may switch to, never the one that just failed; "wait, it is being sent again" is
//! said only while the message is really still being retried.

use super::{Cause, NextStep};
use crate::verification::Channel;

/// One attempt, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub next_step: NextStep,
    /// What happened and what to do, in Indonesian.
    pub id: String,
    /// The same in English.
    pub en: String,
}

/// What `cause` means for a message sent over `channel`, in Indonesian and English.
pub fn describe(cause: Cause, channel: Channel) -> (&'static str, &'static str) {
    use Channel::{Email, Sms, Voice, Whatsapp};
    match (cause, channel) {
        (Cause::Delivered, Voice) => ("Panggilan sudah diterima.", "The call was answered."),
        (Cause::Delivered, _) => ("Pesan sudah diterima.", "The message was delivered."),
        (Cause::NumberInactive, Email) => (
            "Alamat email tidak aktif atau salah.",
            "The email address is inactive or wrong.",
        ),
        (Cause::NumberInactive, _) => (
            "Nomor tidak aktif, sudah hangus, atau salah.",
            "The number is inactive, expired or wrong.",
        ),
        (Cause::NotOnNetwork | Cause::PhoneUnreachable, Email) => (
            "Server email penerima tidak dapat dihubungi saat ini.",
            "The recipient's mail server cannot be reached right now.",
        ),
        (Cause::NotOnNetwork, _) => (
            "Nomor tidak terdaftar di jaringan operator saat ini.",
            "The number is not registered on the operator's network right now.",
        ),
        (Cause::PhoneUnreachable, Whatsapp) => (
            "HP mati atau tidak tersambung ke internet.",
            "The phone is switched off or not connected to the internet.",
        ),
        (Cause::PhoneUnreachable, Voice) => (
            "HP mati, di luar jangkauan, atau panggilan tidak dijawab.",
            "The phone is switched off, out of coverage, or the call was not answered.",
        ),
        (Cause::PhoneUnreachable, Sms) => (
            "HP mati atau di luar jangkauan.",
            "The phone is switched off or out of coverage.",
        ),
        (Cause::InboxFull, Sms) => (
            "Kotak masuk SMS di HP penuh.",
            "The phone's SMS inbox is full.",
        ),
        (Cause::InboxFull, Email) => ("Kotak surat penerima penuh.", "The mailbox is full."),
        (Cause::InboxFull, Whatsapp | Voice) => {
            ("Memori HP penuh.", "The phone's storage is full.")
        }
        (Cause::CannotReceiveSms, Sms) => (
            "Nomor ini tidak bisa menerima SMS.",
            "This number cannot receive SMS.",
        ),
        (Cause::CannotReceiveSms | Cause::NotOnWhatsapp, Email) => (
            "Alamat email ini tidak bisa menerima pesan.",
            "This email address cannot receive messages.",
        ),
        (Cause::CannotReceiveSms, Whatsapp) => (
            "Nomor ini tidak bisa menerima pesan WhatsApp.",
            "This number cannot receive WhatsApp messages.",
        ),
        (Cause::CannotReceiveSms | Cause::NotOnWhatsapp, Voice) => (
            "Nomor ini tidak bisa menerima panggilan.",
            "This number cannot receive calls.",
        ),
        (Cause::NotOnWhatsapp, Whatsapp) => (
            "Nomor ini tidak terdaftar di WhatsApp.",
            "This number is not on WhatsApp.",
        ),
        (Cause::NotOnWhatsapp, Sms) => (
            "Nomor ini tidak bisa menerima SMS.",
            "This number cannot receive SMS.",
        ),
        (Cause::BlockedByOperator, Email) => (
            "Alamat email diblokir oleh penyedia email.",
            "The email address is blocked by its mail provider.",
        ),
        (Cause::BlockedByOperator, _) => (
            "Nomor diblokir operator atau masa aktif habis.",
            "The number is blocked by the operator or its validity has expired.",
        ),
        (Cause::SpamFiltered, Sms) => (
            "Pesan ditahan filter spam operator.",
            "The operator's spam filter held the message.",
        ),
        (Cause::SpamFiltered, Whatsapp) => {
            ("WhatsApp menahan pesan ini.", "WhatsApp held the message.")
        }
        (Cause::SpamFiltered, Email) => (
            "Email ditahan filter spam.",
            "A spam filter held the email.",
        ),
        (Cause::SpamFiltered, Voice) => (
            "Panggilan diblokir operator.",
            "The operator blocked the call.",
        ),
        (Cause::DeviceBlocked, Email) => (
            "Pengiriman ke alamat email ini diblokir.",
            "Delivery to this email address is blocked.",
        ),
        (Cause::DeviceBlocked, _) => ("Perangkat diblokir.", "The device is blocked."),
        (Cause::NetworkUnsupported, Sms) => (
            "Jaringan (atau roaming) tidak mendukung SMS.",
            "The network (or roaming partner) does not support SMS.",
        ),
        (Cause::NetworkUnsupported, Whatsapp) => (
            "Jaringan (atau roaming) tidak mendukung pengiriman ini.",
            "The network (or roaming partner) does not support this delivery.",
        ),
        (Cause::NetworkUnsupported, Voice) => (
            "Jaringan (atau roaming) tidak mendukung panggilan ini.",
            "The network (or roaming partner) does not support this call.",
        ),
        (Cause::NetworkUnsupported, Email) => (
            "Server email penerima tidak mendukung pesan ini.",
            "The recipient's mail server does not support this message.",
        ),
        (Cause::PhoneBusy, Email) => (
            "Server email penerima sedang sibuk.",
            "The recipient's mail server was busy.",
        ),
        (Cause::PhoneBusy, Voice) => ("Nomor sedang sibuk.", "The line was busy."),
        (Cause::PhoneBusy, _) => ("HP sedang sibuk.", "The phone was busy."),
        (Cause::OperatorFailure, Email) => (
            "Gangguan pada server email penerima.",
            "The recipient's mail server failed.",
        ),
        (Cause::OperatorFailure, _) => (
            "Gangguan jaringan operator.",
            "The operator's network failed.",
        ),
        (Cause::InvalidNumber, Email) => (
            "Alamat email tidak valid.",
            "The email address is not valid.",
        ),
        (Cause::InvalidNumber, _) => ("Nomor tidak valid.", "The number is not valid."),
        (Cause::ProviderOverloaded, _) => (
            "Penyedia pengiriman sedang padat.",
            "The delivery provider is overloaded.",
        ),
        (Cause::ProviderThrottled, _) => (
            "Pengiriman sedang diperlambat oleh penyedia.",
            "The provider is slowing deliveries down.",
        ),
        (Cause::ProviderError, _) => (
            "Gangguan pada penyedia pengiriman.",
            "The delivery provider failed.",
        ),
        (Cause::ProviderMisconfigured, _) => (
            "Gangguan konfigurasi pengiriman di pihak kami.",
            "A delivery configuration problem on our side.",
        ),
        (Cause::MailboxRejected, Email) => (
            "Alamat email tidak ada atau menolak pesan.",
            "The email address does not exist or refused the message.",
        ),
        (Cause::MailboxRejected, Voice) => (
            "Penerima menolak panggilan.",
            "The recipient refused the call.",
        ),
        (Cause::MailboxRejected, _) => (
            "Penerima menolak pesan.",
            "The recipient refused the message.",
        ),
        (Cause::Cancelled, Email) => ("Pengiriman email dibatalkan.", "The email was cancelled."),
        (Cause::Cancelled, Voice) => (
            "Panggilan dibatalkan oleh operator.",
            "The operator cancelled the call.",
        ),
        (Cause::Cancelled, _) => (
            "Pesan dibatalkan oleh operator.",
            "The operator cancelled the message.",
        ),
        (Cause::Unknown, _) => (
            "Status pengiriman belum diketahui.",
            "The delivery status is not known.",
        ),
        (Cause::NotSent, _) => (
            "Kode tidak terkirim: tidak ada penyedia yang bisa mengirimnya sebelum kode kedaluwarsa.",
            "The code was not sent: no provider could send it before it expired.",
        ),
    }
}

/// What to do about `cause` after a message over `channel`. `others` are the channels the
/// participant may ask on instead (the failed one is left out whatever is passed);
/// `still_trying`: the message is still queued for another round, so waiting may help.
pub fn next_step(
    cause: Cause,
    channel: Channel,
    others: &[Channel],
    still_trying: bool,
) -> NextStep {
    let email = channel == Channel::Email;
    let step = match cause {
        Cause::Delivered => NextStep::None,
        Cause::NumberInactive | Cause::InvalidNumber | Cause::MailboxRejected if email => {
            NextStep::CheckAddress
        }
        Cause::NumberInactive | Cause::InvalidNumber => NextStep::CheckNumber,
        Cause::NotOnNetwork | Cause::PhoneUnreachable if email => NextStep::SwitchChannel,
        Cause::NotOnNetwork | Cause::PhoneUnreachable => NextStep::FindSignal,
        Cause::InboxFull => NextStep::ClearInbox,
        Cause::BlockedByOperator if email => NextStep::SwitchChannel,
        Cause::BlockedByOperator => NextStep::ContactOperator,
        Cause::CannotReceiveSms
        | Cause::NetworkUnsupported
        | Cause::SpamFiltered
        | Cause::DeviceBlocked
        | Cause::NotOnWhatsapp
        | Cause::MailboxRejected
        | Cause::Cancelled
        | Cause::OperatorFailure
        | Cause::ProviderError
        | Cause::Unknown => NextStep::SwitchChannel,
        // "Being sent again" is true only while the message waits for another round.
        Cause::PhoneBusy | Cause::ProviderOverloaded | Cause::ProviderThrottled if still_trying => {
            NextStep::Wait
        }
        Cause::PhoneBusy | Cause::ProviderOverloaded | Cause::ProviderThrottled => NextStep::None,
        Cause::ProviderMisconfigured => NextStep::ContactCallCentre,
        Cause::NotSent => NextStep::AskAgain,
    };
    let nowhere_else = !others.iter().any(|other| *other != channel);
    match step {
        NextStep::SwitchChannel if nowhere_else => NextStep::ContactCallCentre,
        step => step,
    }
}

/// What happened and what to do, for an attempt over `channel` (see [`next_step`]).
pub fn explain(
    cause: Cause,
    channel: Channel,
    others: &[Channel],
    still_trying: bool,
) -> Explanation {
    let step = next_step(cause, channel, others, still_trying);
    let others: Vec<Channel> = others
        .iter()
        .copied()
        .filter(|other| *other != channel)
        .collect();
    let (what_id, what_en) = describe(cause, channel);
    let (next_id, next_en) = advise(step, channel, &others);
    let join = |a: &str, b: &str| {
        if b.is_empty() {
            a.to_owned()
        } else {
            format!("{a} {b}")
        }
    };
    Explanation {
        next_step: step,
        id: join(what_id, &next_id),
        en: join(what_en, &next_en),
    }
}

/// A channel as the participant calls it.
fn channel_name(channel: Channel) -> (&'static str, &'static str) {
    match channel {
        Channel::Sms => ("SMS", "SMS"),
        Channel::Whatsapp => ("WhatsApp", "WhatsApp"),
        Channel::Email => ("email", "email"),
        Channel::Voice => ("telepon", "voice call"),
    }
}

/// `A, B atau C` and `A, B or C`.
fn channel_list(channels: &[Channel]) -> (String, String) {
    let join = |names: Vec<&str>, or: &str| match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} {or} {last}", rest.join(", ")),
    };
    (
        join(
            channels.iter().map(|c| channel_name(*c).0).collect(),
            "atau",
        ),
        join(channels.iter().map(|c| channel_name(*c).1).collect(), "or"),
    )
}

/// The words of `step` after a message over `channel`; `others` never holds `channel`.
fn advise(step: NextStep, channel: Channel, others: &[Channel]) -> (String, String) {
    let (list_id, list_en) = channel_list(others);
    let or_ask = |id: &str, en: &str| {
        if others.is_empty() {
            (format!("{id}."), format!("{en}."))
        } else {
            (
                format!("{id}, atau minta kode lewat {list_id}."),
                format!("{en}, or ask for the code by {list_en}."),
            )
        }
    };
    let fixed = |id: &str, en: &str| (id.to_owned(), en.to_owned());
    match (step, channel) {
        (NextStep::None, _) => fixed("", ""),
        (NextStep::Wait, Channel::Voice) => fixed(
            "Tunggu sebentar; panggilan akan diulang.",
            "Please wait; the call will be made again.",
        ),
        (NextStep::Wait, _) => fixed(
            "Tunggu sebentar; pesan sedang dikirim ulang.",
            "Please wait; the message is being sent again.",
        ),
        (NextStep::FindSignal, Channel::Whatsapp) => fixed(
            "Nyalakan HP dan pastikan tersambung ke internet, lalu minta kode lagi.",
            "Turn your phone on and make sure it is connected to the internet, then ask for a new code.",
        ),
        (NextStep::FindSignal, _) => fixed(
            "Nyalakan HP dan pastikan ada sinyal, lalu minta kode lagi.",
            "Turn your phone on and make sure it has signal, then ask for a new code.",
        ),
        (NextStep::ClearInbox, Channel::Sms) => fixed(
            "Hapus sebagian pesan di HP Anda, lalu minta kode lagi.",
            "Delete some messages on your phone, then ask for a new code.",
        ),
        (NextStep::ClearInbox, Channel::Email) => or_ask(
            "Kosongkan sebagian kotak surat Anda, lalu minta kode lagi",
            "Free some space in your mailbox, then ask for a new code",
        ),
        (NextStep::ClearInbox, _) => fixed(
            "Kosongkan sebagian memori HP Anda, lalu minta kode lagi.",
            "Free some storage on your phone, then ask for a new code.",
        ),
        (NextStep::SwitchChannel, _) => (
            format!("Minta kode lewat {list_id}."),
            format!("Ask for the code by {list_en}."),
        ),
        (NextStep::CheckNumber, _) => fixed(
            "Pastikan nomor HP Anda benar dan masih aktif; jika sudah tidak aktif, ubah nomor di kantor cabang.",
            "Check that your phone number is right and still active; if not, change it at a branch office.",
        ),
        (NextStep::CheckAddress, _) => or_ask(
            "Pastikan alamat yang Anda berikan benar",
            "Check that the address you gave is right",
        ),
        (NextStep::ContactOperator, _) => or_ask(
            "Hubungi operator seluler Anda (nomor diblokir atau masa aktif habis)",
            "Contact your mobile operator (number blocked or validity expired)",
        ),
        (NextStep::ContactCallCentre, _) => fixed(
            "Silakan coba lagi nanti atau hubungi pusat layanan.",
            "Please try again later or contact the call centre.",
        ),
        (NextStep::AskAgain, _) => or_ask("Minta kode baru", "Ask for a new code"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(text: &str) -> String {
        text.to_lowercase()
    }

    /// Every cause over every channel, with every other channel offered, none, or one: worded for
    /// that channel, never suggesting it again.
    #[test]
    fn every_cause_on_every_channel_fits_the_channel_and_never_suggests_it_again() {
        for channel in Channel::ALL {
            let all_others: Vec<Channel> = Channel::ALL
                .into_iter()
                .filter(|other| *other != channel)
                .collect();
            let offers = [
                Channel::ALL.to_vec(),
                all_others.clone(),
                Vec::new(),
                vec![all_others[0]],
            ];
            for cause in Cause::ALL {
                for others in &offers {
                    for still_trying in [false, true] {
                        let case = format!("{cause:?} over {channel:?}, offering {others:?}");
                        let explained = explain(cause, channel, others, still_trying);
                        let step = explained.next_step;
                        let (what_id, what_en) = describe(cause, channel);
                        assert!(!what_id.is_empty() && !what_en.is_empty(), "{case}");
                        assert_ne!(explained.id, explained.en, "{case}");
                        assert!(explained.id.starts_with(what_id), "{case}");
                        assert!(explained.en.starts_with(what_en), "{case}");
                        let advice_id = &explained.id[what_id.len()..];
                        let advice_en = &explained.en[what_en.len()..];
                        assert_eq!(
                            advice_id.is_empty(),
                            step == NextStep::None,
                            "{case}: {}",
                            explained.id
                        );
                        // The failed channel is never suggested, whatever was offered.
                        let (name_id, name_en) = channel_name(channel);
                        assert!(
                            !lower(advice_id).contains(&lower(name_id)),
                            "{case}: {advice_id}"
                        );
                        assert!(
                            !lower(advice_en).contains(&lower(name_en)),
                            "{case}: {advice_en}"
                        );
                        // Switching names exactly the channels offered (other than this one).
                        let offered: Vec<Channel> = others
                            .iter()
                            .copied()
                            .filter(|other| *other != channel)
                            .collect();
                        for other in Channel::ALL.into_iter().filter(|c| *c != channel) {
                            let (other_id, other_en) = channel_name(other);
                            let listed = offered.contains(&other)
                                && matches!(
                                    step,
                                    NextStep::SwitchChannel
                                        | NextStep::AskAgain
                                        | NextStep::CheckAddress
                                        | NextStep::ContactOperator
                                )
                                || (offered.contains(&other)
                                    && step == NextStep::ClearInbox
                                    && channel == Channel::Email);
                            assert_eq!(
                                lower(advice_id).contains(&lower(other_id)),
                                listed,
                                "{case}: {advice_id}"
                            );
                            assert_eq!(
                                lower(advice_en).contains(&lower(other_en)),
                                listed,
                                "{case}: {advice_en}"
                            );
                            // What happened names no other channel.
                            assert!(!lower(what_id).contains(&lower(other_id)), "{case}");
                            assert!(!lower(what_en).contains(&lower(other_en)), "{case}");
                        }
                        if step == NextStep::SwitchChannel {
                            assert!(!offered.is_empty(), "{case}: switch to nowhere");
                        }
                        // "Being sent again" only while it is.
                        if !still_trying {
                            assert_ne!(step, NextStep::Wait, "{case}");
                        }
                        // Phone words for an email, mailbox words for a phone.
                        let (rest_id, rest_en) = (
                            advice_id.replace(&channel_list(&offered).0, ""),
                            advice_en.replace(&channel_list(&offered).1, ""),
                        );
                        let said = format!("{what_id} {rest_id} {what_en} {rest_en}");
                        let foreign: &[&str] = if channel == Channel::Email {
                            &[
                                "HP", "phone", "nomor", "number", "SMS", "operator", "sinyal",
                            ]
                        } else {
                            &[
                                "kotak surat",
                                "mailbox",
                                "alamat email",
                                "email address",
                                "mail server",
                            ]
                        };
                        for word in foreign {
                            assert!(!said.contains(word), "{case}: `{word}` in {said}");
                        }
                        match channel {
                            Channel::Email => assert!(
                                !matches!(
                                    step,
                                    NextStep::FindSignal
                                        | NextStep::CheckNumber
                                        | NextStep::ContactOperator
                                ),
                                "{case}"
                            ),
                            _ => assert_ne!(step, NextStep::CheckAddress, "{case}"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_reviewed_cases_read_right() {
        let others = [
            Channel::Sms,
            Channel::Whatsapp,
            Channel::Email,
            Channel::Voice,
        ];
        // SMTP 552: the mailbox, not the phone's SMS inbox.
        let full = explain(Cause::InboxFull, Channel::Email, &others, false);
        assert_eq!(full.next_step, NextStep::ClearInbox);
        assert_eq!(
            full.en,
            "The mailbox is full. Free some space in your mailbox, then ask for a new code, or ask \
             for the code by SMS, WhatsApp or voice call."
        );
        // An email refusal never advises email.
        let rejected = explain(Cause::MailboxRejected, Channel::Email, &others, false);
        assert_eq!(rejected.next_step, NextStep::CheckAddress);
        assert_eq!(
            rejected.id,
            "Alamat email tidak ada atau menolak pesan. Pastikan alamat yang Anda berikan benar, \
             atau minta kode lewat SMS, WhatsApp atau telepon."
        );
        // WhatsApp 131026 never advises WhatsApp.
        let not_on = explain(Cause::NotOnWhatsapp, Channel::Whatsapp, &others, false);
        assert_eq!(
            not_on.en,
            "This number is not on WhatsApp. Ask for the code by SMS, email or voice call."
        );
        // A message given up says so and what to do.
        let dropped = explain(Cause::NotSent, Channel::Sms, &[Channel::Whatsapp], false);
        assert_eq!(dropped.next_step, NextStep::AskAgain);
        assert_eq!(
            dropped.id,
            "Kode tidak terkirim: tidak ada penyedia yang bisa mengirimnya sebelum kode \
             kedaluwarsa. Minta kode baru, atau minta kode lewat WhatsApp."
        );
        // Throttling says "wait" while retried, nothing once the message is settled.
        let throttled = |still| explain(Cause::ProviderThrottled, Channel::Sms, &others, still);
        assert_eq!(throttled(true).next_step, NextStep::Wait);
        assert_eq!(throttled(false).next_step, NextStep::None);
        assert_eq!(
            throttled(false).id,
            "Pengiriman sedang diperlambat oleh penyedia."
        );
        // Nowhere else to go: the call centre, not "ask by nothing".
        assert_eq!(
            next_step(Cause::ProviderError, Channel::Sms, &[Channel::Sms], false),
            NextStep::ContactCallCentre
        );
    }
}
