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

/// A positive amount of money in minor units. Never a float: floats cannot
/// represent 0.10 and money must round-trip exactly. The fields are private
/// and deserialisation goes through [`Money::new`], so a zero or negative
/// price cannot enter from JSON either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "MoneyFields", into = "MoneyFields")]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

/// Money's wire shape: `{"amount_minor": 500, "currency": "EUR"}`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyFields {
    amount_minor: i64,
    currency: Currency,
}

impl TryFrom<MoneyFields> for Money {
    type Error = MoneyError;
    fn try_from(f: MoneyFields) -> Result<Self, Self::Error> {
        Money::new(f.amount_minor, f.currency)
    }
}

impl From<Money> for MoneyFields {
    fn from(m: Money) -> Self {
        MoneyFields { amount_minor: m.amount_minor, currency: m.currency }
    }
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

    /// The amount in minor units (cents, kopecks); always positive.
    pub fn amount_minor(self) -> i64 {
        self.amount_minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// Parses a decimal amount such as `1,500.00`, `1 500,50`, `5` or `5.5`
    /// into minor units. A `,` or `.` followed by 1–2 digits at the end is
    /// the decimal separator; grouping uses one other separator (`,` `.`
    /// space, no-break space, `'`) between groups of exactly three digits.
    /// Anything else (`5.000.0`, `1,500,50`, `5 00`) is an error, not a guess.
    pub fn parse_amount(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let bad = || MoneyError::BadAmount(text.to_owned());
        let t = text.trim();
        let is_group_sep = |c: char| matches!(c, ',' | '.' | ' ' | '\u{a0}' | '\u{202f}' | '\'');
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit() || is_group_sep(c)) {
            return Err(bad());
        }
        let (int_part, frac_part) = match t.rfind([',', '.']) {
            Some(pos) if (1..=2).contains(&(t.len() - pos - 1)) => {
                let (int_part, frac) = (&t[..pos], &t[pos + 1..]);
                let sep = t[pos..].chars().next().expect("separator");
                if int_part.contains(sep) || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                (int_part, frac)
            }
            _ => (t, ""),
        };
        let mut seps = int_part.chars().filter(|c| !c.is_ascii_digit());
        if let Some(first) = seps.next() {
            if seps.any(|c| c != first) {
                return Err(bad());
            }
        }
        let groups: Vec<&str> = int_part.split(|c: char| !c.is_ascii_digit()).collect();
        if groups[0].is_empty()
            || (groups.len() > 1 && (groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3)))
        {
            return Err(bad());
        }
        let scale = 10i64.pow(currency.minor_digits());
        let major: i64 = groups.concat().parse().map_err(|_| bad())?;
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
        write!(f, "{}{}.{:02}", self.currency.symbol(), self.amount_minor / scale, self.amount_minor % scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_amount_shapes() {
        let eur = |s| Money::parse_amount(s, Currency::Eur).map(|m| m.amount_minor());
        assert_eq!(eur("5.00"), Ok(500));
        assert_eq!(eur("5"), Ok(500));
        assert_eq!(eur("5.5"), Ok(550));
        assert_eq!(eur("1,500.00"), Ok(150_000));
        assert_eq!(eur("1 500,50"), Ok(150_050));
        assert_eq!(eur("1.500,50"), Ok(150_050));
        assert_eq!(eur("12,345,678.99"), Ok(1_234_567_899));
        assert_eq!(eur("1,500"), Ok(150_000));
        assert_eq!(eur("1\u{a0}500"), Ok(150_000));
        assert!(eur("1,50,0").is_err());
        assert!(eur("5.000.0").is_err());
        assert!(eur("1,500,50").is_err());
        assert!(eur("5 00").is_err());
        assert!(eur("12 34").is_err());
        assert!(eur("1,500 000").is_err());
        assert!(eur(".50").is_err());
        assert!(eur("abc").is_err());
        assert!(eur("0.00").is_err());
        assert!(eur("").is_err());
    }

    #[test]
    fn displays_with_symbol() {
        assert_eq!(Money::new(150_050, Currency::Rub).unwrap().to_string(), "₽1500.50");
    }

    #[test]
    fn deserialising_keeps_the_invariant() {
        let m: Money = serde_json::from_str(r#"{"amount_minor":500,"currency":"EUR"}"#).unwrap();
        assert_eq!((m.amount_minor(), m.currency()), (500, Currency::Eur));
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"amount_minor":500,"currency":"EUR"}"#);
        for bad in [r#"{"amount_minor":0,"currency":"EUR"}"#, r#"{"amount_minor":-5,"currency":"EUR"}"#] {
            let err = serde_json::from_str::<Money>(bad).unwrap_err().to_string();
            assert!(err.contains("positive"), "{bad}: {err}");
        }
    }
}
