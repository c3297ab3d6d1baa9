use std::fmt;
use std::str::FromStr;

/// ISO 4217 currencies Tribute charges in. Unknown symbols are an error,
/// not a guess: a wrong currency would activate the wrong product tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Currency {
    Eur,
    Usd,
    Rub,
    Gbp,
    Uah,
    Kzt,
}

impl Currency {
    pub fn code(self) -> &'static str {
        match self {
            Currency::Eur => "EUR",
            Currency::Usd => "USD",
            Currency::Rub => "RUB",
            Currency::Gbp => "GBP",
            Currency::Uah => "UAH",
            Currency::Kzt => "KZT",
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Currency::Eur => "€",
            Currency::Usd => "$",
            Currency::Rub => "₽",
            Currency::Gbp => "£",
            Currency::Uah => "₴",
            Currency::Kzt => "₸",
        }
    }

    /// Recognises a currency symbol or ISO code (case-insensitive), e.g. `€`, `EUR`, `руб`.
    pub fn from_symbol_or_code(s: &str) -> Option<Self> {
        let s = s.trim();
        Some(match s {
            "€" => Currency::Eur,
            "$" => Currency::Usd,
            "₽" => Currency::Rub,
            "£" => Currency::Gbp,
            "₴" => Currency::Uah,
            "₸" => Currency::Kzt,
            _ => match s.to_lowercase().trim_end_matches('.') {
                "eur" => Currency::Eur,
                "usd" => Currency::Usd,
                "rub" | "руб" | "р" => Currency::Rub,
                "gbp" => Currency::Gbp,
                "uah" | "грн" => Currency::Uah,
                "kzt" | "тг" => Currency::Kzt,
                _ => return None,
            },
        })
    }

    /// Number of minor units in one major unit (all supported currencies use 2 decimals).
    pub fn minor_digits(self) -> u32 {
        2
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_symbol_or_code(s).ok_or_else(|| MoneyError::UnknownCurrency(s.to_owned()))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money in minor units. Never a float: floats cannot
/// represent 0.10 and money must round-trip exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoneyError {
    #[error("unknown currency {0:?}")]
    UnknownCurrency(String),
    #[error("amount {0:?} is not a number like 1,500.00")]
    BadAmount(String),
    #[error("amount must be positive")]
    NotPositive,
}

impl Money {
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount_minor <= 0 {
            return Err(MoneyError::NotPositive);
        }
        Ok(Self { amount_minor, currency })
    }

    /// Parses a decimal amount such as `1,500.00`, `1 500,50`, `5` or `5.5`
    /// into minor units. A separator followed by exactly 1–2 digits at the
    /// end is the decimal separator; every other `,`/`.`/space is grouping.
    pub fn parse_amount(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let bad = || MoneyError::BadAmount(text.to_owned());
        let cleaned: String = text
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\'' | '_'))
            .collect();
        if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '.') {
            return Err(bad());
        }
        let (int_part, frac_part) = match cleaned.rfind([',', '.']) {
            Some(pos) if cleaned.len() - pos - 1 <= 2 && cleaned.len() - pos > 1 => {
                (&cleaned[..pos], &cleaned[pos + 1..])
            }
            Some(pos) if cleaned.len() - pos - 1 == 3 => (cleaned.as_str(), ""),
            Some(_) => return Err(bad()),
            None => (cleaned.as_str(), ""),
        };
        // Grouping separators must separate groups of exactly three digits.
        let groups: Vec<&str> = int_part.split([',', '.']).collect();
        if groups.iter().any(|g| g.is_empty())
            || groups.iter().skip(1).any(|g| g.len() != 3)
            || groups.first().is_some_and(|g| g.len() > 3 && groups.len() > 1)
        {
            return Err(bad());
        }
        let digits: String = groups.concat();
        let scale = 10i64.pow(currency.minor_digits());
        let major: i64 = digits.parse().map_err(|_| bad())?;
        let minor: i64 = match frac_part.len() {
            0 => 0,
            1 => frac_part.parse::<i64>().map_err(|_| bad())? * 10,
            _ => frac_part.parse().map_err(|_| bad())?,
        };
        let amount = major.checked_mul(scale).and_then(|m| m.checked_add(minor)).ok_or_else(bad)?;
        Money::new(amount, currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = 10i64.pow(self.currency.minor_digits());
        write!(
            f,
            "{}{}.{:02}",
            self.currency.symbol(),
            self.amount_minor / scale,
            self.amount_minor % scale
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_amount_shapes() {
        let eur = |s| Money::parse_amount(s, Currency::Eur).map(|m| m.amount_minor);
        assert_eq!(eur("5.00"), Ok(500));
        assert_eq!(eur("5"), Ok(500));
        assert_eq!(eur("5.5"), Ok(550));
        assert_eq!(eur("1,500.00"), Ok(150_000));
        assert_eq!(eur("1 500,50"), Ok(150_050));
        assert_eq!(eur("1.500,50"), Ok(150_050));
        assert_eq!(eur("12,345,678.99"), Ok(1_234_567_899));
        assert_eq!(eur("1,500"), Ok(150_000));
        assert!(eur("1,50,0").is_err());
        assert!(eur("abc").is_err());
        assert!(eur("0.00").is_err());
        assert!(eur("").is_err());
    }

    #[test]
    fn displays_with_symbol() {
        assert_eq!(Money::new(150_050, Currency::Rub).unwrap().to_string(), "₽1500.50");
    }
}
