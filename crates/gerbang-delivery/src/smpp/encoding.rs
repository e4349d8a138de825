//! GSM 03.38 7-bit default alphabet (sent unpacked, one septet per octet, `data_coding` 0) when every
//! character of the text has a place in it, UCS-2 big-endian (`data_coding` 8) otherwise.

/// The basic table: the character at each septet value.
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table, reached with the escape septet 0x1B.
const EXTENSION: [(char, u8); 10] = [
    ('\u{c}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

/// How a text goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// SMPP `data_coding`: 0 (SMSC default alphabet, GSM 7-bit) or 8 (UCS-2).
    pub data_coding: u8,
    pub bytes: Vec<u8>,
}

fn septets(c: char) -> Option<Vec<u8>> {
    if c == '\u{1b}' {
        return None;
    }
    if let Some(index) = BASIC.iter().position(|b| *b == c) {
        return u8::try_from(index).ok().map(|s| vec![s]);
    }
    EXTENSION
        .iter()
        .find(|(e, _)| *e == c)
        .map(|(_, code)| vec![0x1B, *code])
}

/// GSM 7-bit when it can carry the whole text, UCS-2 otherwise.
pub fn encode(text: &str) -> Encoded {
    let gsm: Option<Vec<u8>> = text
        .chars()
        .map(septets)
        .collect::<Option<Vec<_>>>()
        .map(|parts| parts.concat());
    match gsm {
        Some(bytes) => Encoded {
            data_coding: 0,
            bytes,
        },
        None => Encoded {
            data_coding: 8,
            bytes: text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        },
    }
}

/// How many characters fit in one message with this encoding.
pub fn single_message_capacity(encoded: &Encoded) -> usize {
    if encoded.data_coding == 0 { 160 } else { 70 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_indonesian_text_is_gsm_with_the_at_sign_as_septet_zero() {
        let e = encode("JKN: 482913. @jkn.go.id #482913");
        assert_eq!(e.data_coding, 0);
        assert_eq!(e.bytes.len(), 31);
        assert_eq!(e.bytes[0], b'J');
        assert_eq!(e.bytes[13], 0x00, "@ is septet 0");
        assert_eq!(single_message_capacity(&e), 160);
    }

    #[test]
    fn extension_characters_take_two_septets() {
        let e = encode("{€}");
        assert_eq!(e.data_coding, 0);
        assert_eq!(e.bytes, [0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29]);
    }

    #[test]
    fn anything_outside_gsm_makes_the_whole_text_ucs2() {
        let e = encode("Kode ☺ 12");
        assert_eq!(e.data_coding, 8);
        assert_eq!(e.bytes.len(), 9 * 2);
        assert_eq!(&e.bytes[..2], &[0x00, b'K']);
        assert_eq!(&e.bytes[10..12], &[0x26, 0x3A], "☺ is U+263A");
        assert_eq!(
            encode("`").data_coding,
            8,
            "the backtick is not in GSM 03.38"
        );
    }

    #[test]
    fn every_basic_character_maps_back_to_its_septet() {
        for (septet, c) in BASIC.iter().enumerate() {
            if *c == '\u{1b}' {
                continue;
            }
            assert_eq!(encode(&c.to_string()).bytes, [septet as u8], "{c:?}");
        }
    }
}
