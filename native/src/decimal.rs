//! Decimals as exact scaled integers: a decimal's text → its unscaled integer at a scale
//! (half-even, as `Decimal.quantize` in the ledger's context) → Avro's big-endian two's
//! complement, and back. No float anywhere; integers are `num_bigint` (a decimal(76,36)
//! needs 253 bits, past i128).

use num_bigint::{BigInt, BigUint, Sign};

/// Why a decimal cannot be written.
#[derive(Debug)]
pub enum Unfit {
    NotFinite,
    Malformed,
    TooManyDigits,
}

/// The unscaled integer of the decimal written as `text` (Python's `str(Decimal)`:
/// `-12.5`, `1.2E+5`, `0E-18`, `NaN`, `Infinity`) at `scale` places, rounded half-even,
/// with at most `precision` digits.
pub fn unscaled(text: &str, precision: usize, scale: i64) -> Result<Unscaled, Unfit> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match body.find(['E', 'e']) {
        Some(at) => {
            let exponent: i64 = body[at + 1..].parse().map_err(|_| Unfit::Malformed)?;
            (&body[..at], exponent)
        }
        None => (body, 0),
    };
    if mantissa.is_empty() || !mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let lower = body.to_ascii_lowercase();
        return Err(if lower.contains("inf") || lower.contains("nan") {
            Unfit::NotFinite
        } else {
            Unfit::Malformed
        });
    }
    let mut digits: Vec<u8> = Vec::with_capacity(mantissa.len());
    let mut places: i64 = 0;
    let mut seen_point = false;
    for b in mantissa.bytes() {
        if b == b'.' {
            if seen_point {
                return Err(Unfit::Malformed);
            }
            seen_point = true;
        } else {
            digits.push(b - b'0');
            if seen_point {
                places += 1;
            }
        }
    }
    if digits.is_empty() {
        return Err(Unfit::Malformed);
    }
    let first = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
    let digits = &digits[first..];
    if digits.is_empty() {
        return Ok(Unscaled {
            negative: false,
            digits: vec![0],
        });
    }
    // value = digits × 10^(exponent - places); scaled: × 10^scale
    let shift = (exponent as i128) - (places as i128) + (scale as i128);
    let kept: Vec<u8> = if shift >= 0 {
        if digits.len() as i128 + shift > precision as i128 {
            return Err(Unfit::TooManyDigits);
        }
        let mut kept = digits.to_vec();
        kept.resize(digits.len() + shift as usize, 0);
        kept
    } else {
        let dropped = (-shift).min(digits.len() as i128 + 1) as usize;
        round_half_even(digits, dropped)
    };
    let first = kept.iter().position(|&d| d != 0).unwrap_or(kept.len());
    let kept = &kept[first..];
    if kept.len() > precision {
        return Err(Unfit::TooManyDigits);
    }
    if kept.is_empty() {
        return Ok(Unscaled {
            negative: false,
            digits: vec![0],
        });
    }
    Ok(Unscaled {
        negative,
        digits: kept.to_vec(),
    })
}

/// An unscaled integer as its sign and decimal digits (no leading zero; zero is `[0]`,
/// never negative).
#[derive(Debug)]
pub struct Unscaled {
    pub negative: bool,
    pub digits: Vec<u8>,
}

/// The unscaled integer of `text` at `scale` when it needs no rounding and has at most 38
/// digits (the usual decimal: no more places than the scale), as its sign and magnitude,
/// read without allocating; None sends the caller to `unscaled` (rounding, more digits,
/// anything malformed), which gives the same integer or the error.
pub fn unscaled_small(text: &str, precision: usize, scale: i64) -> Option<(bool, u128)> {
    let bytes = text.as_bytes();
    let (negative, body) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let (mut magnitude, mut digits, mut places) = (0u128, 0usize, 0i128);
    let (mut seen_digit, mut seen_point, mut at) = (false, false, 0);
    while at < body.len() {
        match body[at] {
            b @ b'0'..=b'9' => {
                seen_digit = true;
                places += seen_point as i128;
                if magnitude != 0 || b != b'0' {
                    digits += 1;
                    if digits > 38 {
                        return None;
                    }
                    magnitude = magnitude * 10 + (b - b'0') as u128;
                }
            }
            b'.' if !seen_point => seen_point = true,
            b'E' | b'e' => break,
            _ => return None,
        }
        at += 1;
    }
    if !seen_digit {
        return None;
    }
    let exponent: i128 = match body.get(at + 1..) {
        Some(rest) if at < body.len() => std::str::from_utf8(rest).ok()?.parse().ok()?,
        _ => 0,
    };
    // value = magnitude × 10^(exponent − places); scaled: × 10^scale
    let shift = exponent - places + scale as i128;
    if shift < 0 {
        return None;
    }
    if magnitude == 0 {
        return Some((false, 0));
    }
    if digits as i128 + shift > precision.min(38) as i128 {
        return None;
    }
    Some((negative, magnitude * 10u128.pow(shift as u32)))
}

/// Avro's bytes for an integer below 10^38 given as sign and magnitude: the last `length`
/// bytes of the array (see `twos_complement`).
pub fn small_avro_bytes(negative: bool, magnitude: u128) -> ([u8; 16], usize) {
    let bits = 128 - magnitude.leading_zeros() as usize;
    let signed = if negative {
        -(magnitude as i128)
    } else {
        magnitude as i128
    };
    (signed.to_be_bytes(), (bits + 8) / 8)
}

impl Unscaled {
    /// Avro's bytes for it (see `twos_complement`); below 10^38 in an i128, else a bigint.
    pub fn avro_bytes(&self) -> Vec<u8> {
        if self.digits.len() <= 38 {
            let magnitude = self.digits.iter().fold(0u128, |n, &d| n * 10 + d as u128);
            let (bytes, length) = small_avro_bytes(self.negative, magnitude);
            return bytes[16 - length..].to_vec();
        }
        let sign = if self.negative {
            Sign::Minus
        } else {
            Sign::Plus
        };
        twos_complement(&BigInt::from_biguint(sign, from_digits(&self.digits)))
    }
}

/// `digits` without its last `dropped` digits, rounded half-even (a leading carry adds one).
fn round_half_even(digits: &[u8], dropped: usize) -> Vec<u8> {
    if dropped > digits.len() {
        return vec![0]; // below a tenth of the last kept place: rounds to zero
    }
    let cut = digits.len() - dropped;
    let mut kept = digits[..cut].to_vec();
    let tail = &digits[cut..];
    let up = match tail.first() {
        None => false,
        Some(&d) if d > 5 => true,
        Some(&d) if d < 5 => false,
        Some(_) => tail[1..].iter().any(|&d| d != 0) || kept.last().is_some_and(|&d| d % 2 == 1),
    };
    if up {
        let mut at = kept.len();
        loop {
            if at == 0 {
                kept.insert(0, 1);
                break;
            }
            at -= 1;
            if kept[at] == 9 {
                kept[at] = 0;
            } else {
                kept[at] += 1;
                break;
            }
        }
    }
    if kept.is_empty() {
        kept.push(0);
    }
    kept
}

fn from_digits(digits: &[u8]) -> BigUint {
    let mut value = BigUint::from(0u32);
    // 19 decimal digits per u64 step
    for chunk in digits.chunks(19) {
        let mut part: u64 = 0;
        for &d in chunk {
            part = part * 10 + d as u64;
        }
        value = value * BigUint::from(10u64.pow(chunk.len() as u32)) + BigUint::from(part);
    }
    value
}

/// Big-endian two's complement in `(bit_length(|n|) + 8) / 8` bytes: what Python's
/// `n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True)` writes (one byte more than
/// the minimum for a negative power of two, as the pure-Python encoder does).
pub fn twos_complement(number: &BigInt) -> Vec<u8> {
    let magnitude = number.magnitude();
    let length = (magnitude.bits() as usize + 8) / 8;
    let mut out = vec![0u8; length];
    let bytes = magnitude.to_bytes_be();
    if number.sign() == Sign::Minus {
        let complement = (BigUint::from(1u32) << (8 * length)) - magnitude;
        let bytes = complement.to_bytes_be();
        out[length - bytes.len()..].copy_from_slice(&bytes);
    } else if !(bytes.len() == 1 && bytes[0] == 0) {
        out[length - bytes.len()..].copy_from_slice(&bytes);
    }
    out
}

/// The unscaled integer Avro's decimal bytes hold, as decimal text (`-123`), or None past
/// `precision` digits.
pub fn from_twos_complement(data: &[u8], precision: usize) -> Option<String> {
    if data.len() <= 16 {
        let fill = if data.first().is_some_and(|&b| b & 0x80 != 0) {
            0xFF
        } else {
            0
        };
        let mut word = [fill; 16];
        word[16 - data.len()..].copy_from_slice(data);
        let number = i128::from_be_bytes(word);
        let text = number.unsigned_abs().to_string();
        if number != 0 && text.len() > precision {
            return None;
        }
        return Some(if number < 0 { format!("-{text}") } else { text });
    }
    let number = BigInt::from_signed_bytes_be(data);
    let text = number.magnitude().to_str_radix(10);
    if number.sign() != Sign::NoSign && text.len() > precision {
        return None;
    }
    Some(if number.sign() == Sign::Minus {
        format!("-{text}")
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at18(text: &str) -> String {
        unscaled(text, 38, 18)
            .map(|n| {
                let digits: String = n.digits.iter().map(|d| char::from(b'0' + d)).collect();
                if n.negative {
                    format!("-{digits}")
                } else {
                    digits
                }
            })
            .unwrap_or_else(|e| format!("{e:?}"))
    }

    #[test]
    fn rounds_half_even_at_the_scale() {
        assert_eq!(at18("1.5"), "1500000000000000000");
        assert_eq!(at18("0.0000000000000000005"), "0");
        assert_eq!(at18("0.0000000000000000015"), "2");
        assert_eq!(at18("0.00000000000000000250001"), "3");
        assert_eq!(at18("-0.0000000000000000009"), "-1");
        assert_eq!(at18("9.9999999999999999995"), "10000000000000000000");
        assert_eq!(at18("1E-40"), "0");
        assert_eq!(at18("1.2E+5"), "120000000000000000000000");
        assert_eq!(at18("0E-18"), "0");
        assert_eq!(at18("-0"), "0");
        assert_eq!(at18("NaN"), "NotFinite");
        assert_eq!(at18("1E+20"), "TooManyDigits");
    }

    #[test]
    fn writes_what_python_to_bytes_writes() {
        let hex = |n: i64| -> String {
            let wide = twos_complement(&BigInt::from(n));
            let digits = n
                .unsigned_abs()
                .to_string()
                .bytes()
                .map(|b| b - b'0')
                .collect();
            let narrow = Unscaled {
                negative: n < 0,
                digits,
            }
            .avro_bytes();
            assert_eq!(wide, narrow);
            wide.iter().map(|b| format!("{b:02x}")).collect()
        };
        assert_eq!(hex(0), "00");
        assert_eq!(hex(127), "7f");
        assert_eq!(hex(128), "0080");
        assert_eq!(hex(-1), "ff");
        assert_eq!(hex(-128), "ff80");
        assert_eq!(hex(-129), "ff7f");
    }
}
