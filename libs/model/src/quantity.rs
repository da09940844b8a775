//! Kubernetes resource quantities (`resource.Quantity`): `2`, `500m`, `1002310835n`, `150672Ki`,
//! `1Gi`, `1.5G`, `1e3`, `-2E-2`.
//!
//! A quantity is a signed decimal number followed by a suffix: binary SI (`Ki` `Mi` `Gi` `Ti` `Pi`
//! `Ei`), decimal SI (`n` `u` `m` none `k` `M` `G` `T` `P` `E`) or a decimal exponent (`e`/`E`
//! and an integer). `E` alone is exa; `E` followed by digits is an exponent.

/// Why a quantity string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid quantity {text:?}: {reason}")]
pub struct QuantityError {
    pub text: String,
    pub reason: &'static str,
}

/// The value of a quantity in base units (cores for CPU, bytes for memory and storage).
pub fn parse_quantity(text: &str) -> Result<f64, QuantityError> {
    let error = |reason| QuantityError {
        text: text.to_owned(),
        reason,
    };
    let trimmed = text.trim();
    let number_end = trimmed
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(trimmed.len(), |(i, _)| i);
    let (number, suffix) = trimmed.split_at(number_end);
    if !number.chars().any(|c| c.is_ascii_digit()) {
        return Err(error("no number"));
    }
    if number.matches('.').count() > 1 {
        return Err(error("more than one decimal point"));
    }
    let mantissa: f64 = number.parse().map_err(|_| error("not a number"))?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0_f64.powi(2),
        "Gi" => 1024.0_f64.powi(3),
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        exponent if exponent.starts_with(['e', 'E']) => {
            let digits = &exponent[1..];
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.chars().all(|c| c.is_ascii_digit()) {
                return Err(error("unknown suffix"));
            }
            let power: i32 = digits.parse().map_err(|_| error("exponent out of range"))?;
            10f64.powi(power)
        }
        _ => return Err(error("unknown suffix")),
    };
    let value = mantissa * multiplier;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(error("out of range"))
    }
}

/// A CPU quantity in nanocores, rounded (metrics.k8s.io reports `1002310835n`).
pub fn nanocores(text: &str) -> Result<u64, QuantityError> {
    let cores = parse_quantity(text)?;
    Ok(to_u64((cores * 1e9).round()))
}

/// A memory or storage quantity in bytes, rounded.
pub fn bytes(text: &str) -> Result<u64, QuantityError> {
    Ok(to_u64(parse_quantity(text)?.round()))
}

/// Negative quantities (never seen for usage or capacity) count as zero.
fn to_u64(value: f64) -> u64 {
    if value <= 0.0 {
        0
    } else if value >= u64::MAX as f64 {
        u64::MAX
    } else {
        // In range and rounded by the caller, so the conversion is exact enough.
        value as u64
    }
}

/// A CPU usage in nanocores written back as a quantity (`1880507280n`).
pub fn format_nanocores(nanocores: u64) -> String {
    format!("{nanocores}n")
}

/// Bytes written back as a quantity: `Ki` when they are a whole number of KiB (as kubelet
/// reports memory usage), plain bytes otherwise.
pub fn format_bytes(bytes: u64) -> String {
    if bytes != 0 && bytes.is_multiple_of(1024) {
        format!("{}Ki", bytes / 1024)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn parses_every_suffix_family() {
        for (text, expected) in [
            ("2", 2.0),
            ("500m", 0.5),
            ("1002310835n", 1.002310835),
            ("250u", 0.00025),
            ("150672Ki", 150672.0 * 1024.0),
            ("1Gi", 1073741824.0),
            ("1.5Gi", 1610612736.0),
            ("3Mi", 3145728.0),
            ("2Ti", 2.0 * 1024f64.powi(4)),
            ("1Pi", 1024f64.powi(5)),
            ("1Ei", 1024f64.powi(6)),
            ("1k", 1000.0),
            ("1.5G", 1.5e9),
            ("2M", 2e6),
            ("1T", 1e12),
            ("1P", 1e15),
            ("1E", 1e18),
            ("1e3", 1000.0),
            ("1E3", 1000.0),
            ("5e-3", 0.005),
            ("-2E-2", -0.02),
            ("+4", 4.0),
            (".5", 0.5),
            ("0", 0.0),
            (" 8 ", 8.0),
        ] {
            let value = parse_quantity(text).unwrap();
            assert!(close(value, expected), "{text}: {value} != {expected}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_quantity() {
        for text in [
            "", "Gi", "abc", "1.2.3", "1Xi", "1e", "1e+", "1ee3", "1 Gi", "1Kix", "-",
        ] {
            assert!(parse_quantity(text).is_err(), "{text:?} accepted");
        }
        assert!(parse_quantity("1e400").is_err());
        let error = parse_quantity("1Q").unwrap_err();
        assert_eq!(error.reason, "unknown suffix");
        assert!(error.to_string().contains("\"1Q\""));
    }

    #[test]
    fn converts_to_nanocores_and_bytes() {
        assert_eq!(nanocores("1002310835n").unwrap(), 1_002_310_835);
        assert_eq!(nanocores("500m").unwrap(), 500_000_000);
        assert_eq!(nanocores("2").unwrap(), 2_000_000_000);
        assert_eq!(bytes("150672Ki").unwrap(), 154_288_128);
        assert_eq!(bytes("1Gi").unwrap(), 1_073_741_824);
        assert_eq!(bytes("1e3").unwrap(), 1000);
        assert_eq!(bytes("-1").unwrap(), 0);
        assert_eq!(format_nanocores(1_880_507_280), "1880507280n");
        assert_eq!(format_bytes(621_636 * 1024), "621636Ki");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_bytes(0), "0");
    }
}
