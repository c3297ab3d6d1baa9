//! The seeded scenario: who the customers are, what they order and when,
//! how they and the moderators react, and when the backend and the daemon
//! misbehave. Pure: the same [`Params`] always give the same [`Script`]
//! (one `fastrand::Rng::with_seed` draws everything, in a fixed order).

use serde::Serialize;

use super::Params;

/// One simulated second, in the script's milliseconds.
pub const SEC: u64 = 1000;
pub const MIN: u64 = 60 * SEC;
pub const HOUR: u64 = 60 * MIN;
pub const DAY: u64 = 24 * HOUR;

/// First customer's Telegram user id; customer `i` is `CUSTOMER_BASE + i`.
pub const CUSTOMER_BASE: i64 = 500_000;

/// Everything that will happen, decided up front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Script {
    /// The customers who order, then (hostile content only) the strangers
    /// of the bursts, who never order.
    pub customers: Vec<Customer>,
    pub orders: Vec<PlannedOrder>,
    /// Sorted by `at_ms` (ties keep their generation order).
    pub events: Vec<Timed>,
    /// The end of the scripted period (`days` days); the run then drains.
    pub end_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Customer {
    pub id: i64,
    pub name: String,
    /// Their real account ID on the publisher's site (6 digits, unique).
    pub account: String,
    pub english: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedOrder {
    pub customer: usize,
    pub product: String,
    pub price: String,
    pub kind: OrderKind,
    /// "Order Details" as the customer typed them.
    pub details: String,
    /// What the customer answers, one entry per message we send them
    /// (asks, reminders, "that ID was refused"); nothing more when empty.
    pub replies: Vec<Reply>,
    /// What a moderator does with this order's first case card.
    pub moderator: ModeratorPlan,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum OrderKind {
    /// The customer's real account ID.
    Valid,
    /// No account ID at all.
    MissingId,
    /// A mistyped ID the backend does not know.
    MistypedId { wrong: String },
    /// Their ID and another one.
    TwoIds { other: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// How long after our message the customer answers.
    pub after_ms: u64,
    pub says: Says,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "text")]
pub enum Says {
    /// Their real account ID, in a sentence.
    CorrectId,
    /// An ID the backend does not know.
    WrongId(String),
    /// Something without an ID.
    Chatter(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModeratorPlan {
    /// How long after the card is posted; `None`: nobody ever answers it.
    pub after_ms: Option<u64>,
    pub action: ModeratorAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeratorAction {
    /// Reply to the card with the customer's real account ID.
    GiveAccount,
    /// `/done`: handled by hand.
    Done,
    /// `/reject <reason>`: the order fails (refunded by hand).
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timed {
    pub at_ms: u64,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// The Tribute bot posts order `index` (the backend gets its pending order first).
    Order { index: usize },
    /// A customer writes to us on their own (a question, a long message, a flood line).
    CustomerWrites { customer: usize, text: String },
    /// Telegram's service account (777000) writes: a login code or a security notice.
    ServiceMessage { text: String },
    /// The Tribute bot posts something that is not a valid order (donation, malformed).
    BotNoise { text: String },
    /// The next `n` activation requests answer 503.
    BackendFails { n: u32 },
    /// Every backend answer is held `delay_ms` for `for_ms`.
    BackendSlow { delay_ms: u64, for_ms: u64 },
    /// Every activation request answers 503 for `for_ms`.
    BackendDown { for_ms: u64 },
    /// The daemon is stopped and started again on the same store.
    Restart { kind: RestartKind },
    /// Hostile content: a moderator writes in the moderator chat (a
    /// command, well-formed or not, or text), maybe as a reply.
    ModeratorWrites { text: String, reply: ReplyTarget },
    /// Hostile content: a customer sends a photo with this caption ("": none).
    CustomerMedia { customer: usize, caption: String },
    /// Hostile content: a customer changes the text of their last message to us.
    CustomerEdits { customer: usize, text: String },
    /// Hostile content: a customer forwards a message from elsewhere.
    CustomerForwards { customer: usize, forward: Forward },
}

/// What a moderator's message replies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "to", content = "at")]
pub enum ReplyTarget {
    None,
    /// The newest case card posted so far.
    LatestCard,
    /// Whatever message is at this position (per mille of the chat's
    /// history) when it is sent: a card, an answer of ours, a moderator's.
    Anywhere(u16),
}

/// A forwarded message, as the original had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Forward {
    /// A Tribute order notification for an order like the customer's
    /// (its text and entities: bold title, a mention with their user id).
    Receipt { product: String, price: String, details: String },
    /// A text somebody else wrote: a promo post, a friend's message.
    Text { text: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "at")]
pub enum RestartKind {
    /// Shutdown flag, wait for the step in flight, start again.
    Graceful,
    /// The daemon's task is aborted mid-await (its helper tasks see the
    /// shutdown flag and stop after their step), then started again.
    Abort,
    /// The workflow stops dead at the next pass through this checkpoint
    /// (an index into [`tribute_assistant::orders::Checkpoint::ALL`]), exactly as a
    /// killed process would; the driver then starts it again.
    Crash(usize),
}

pub(super) const PRODUCTS: [(&str, &str); 6] = [
    ("100 Diamonds", "€5.00"),
    ("500 Diamonds", "$20.00"),
    ("1000 Diamonds", "€40.00"),
    ("VIP Month", "€9.00"),
    ("Premium month", "₽500.00"),
    ("Starter Pack", "$2.99"),
];

pub(super) const RU_NAMES: [&str; 10] =
    ["Иван Петров", "Мария", "Олег С.", "Анна К", "Дмитрий", "Пётр", "Светлана", "Алексей", "Наталья", "Кирилл"];
pub(super) const EN_NAMES: [&str; 8] =
    ["Anna Smith", "John", "Kate B", "Mike Ross", "Lena K", "Tom", "Sarah", "Dmitry K"];

pub(super) const RU_QUESTIONS: [&str; 6] = [
    "Подскажите, через сколько придут алмазы?",
    "А где посмотреть мой ID в игре?",
    "Можно ли вернуть деньги, если передумал?",
    "Здравствуйте! Заказ уже обработан?",
    "Почему так долго?",
    "Спасибо, а бонус будет?",
];
pub(super) const EN_QUESTIONS: [&str; 5] = [
    "How long does the activation take?",
    "Where do I find my account ID?",
    "Can I get a refund?",
    "Hi, is my order done yet?",
    "Thanks! Is there a bonus for the next order?",
];
const FLOOD_LINES: [&str; 6] = ["??", "hello?", "где мой заказ", "alo", "ответьте", "please answer"];
const CHATTER: [&str; 4] = ["минуту, сейчас посмотрю", "one sec", "а что такое ID?", "ok"];

/// Builds the script. Everything is drawn from one generator in a fixed
/// order, so the same params always give the same script.
pub fn generate(p: &Params) -> Script {
    let mut rng = fastrand::Rng::with_seed(p.seed);
    let hostile = p.faults == super::Faults::Hostile;
    let faults = p.faults != super::Faults::None;
    let end_ms = u64::from(p.days.max(1)) * DAY;

    // Customers: unique 6-digit accounts in 100000..=899999; wrong IDs are 9xxxxx, never known.
    let n_customers = p.customers.max(1);
    let mut used = std::collections::HashSet::new();
    let customers: Vec<Customer> = (0..n_customers)
        .map(|i| {
            let account = loop {
                let a = rng.u32(100_000..900_000).to_string();
                if used.insert(a.clone()) {
                    break a;
                }
            };
            let english = rng.u8(..100) < 30;
            let name = if english {
                EN_NAMES[rng.usize(..EN_NAMES.len())].to_owned()
            } else {
                RU_NAMES[rng.usize(..RU_NAMES.len())].to_owned()
            };
            Customer { id: CUSTOMER_BASE + i as i64, name, account, english }
        })
        .collect();
    let wrong_id = |rng: &mut fastrand::Rng| rng.u32(900_000..1_000_000).to_string();

    let mut events = Vec::new();
    let mut orders = Vec::with_capacity(p.orders);
    // Orders over the first 90 % of the period, so the last ones still meet the day's faults.
    let span = end_ms * 9 / 10;
    for index in 0..p.orders {
        let customer = rng.usize(..n_customers);
        let c = &customers[customer];
        let (product, price) = PRODUCTS[rng.usize(..PRODUCTS.len())];
        let roll = rng.u8(..100);
        let kind = match roll {
            0..=59 => OrderKind::Valid,
            60..=74 => OrderKind::MissingId,
            75..=89 => OrderKind::MistypedId { wrong: wrong_id(&mut rng) },
            _ => OrderKind::TwoIds { other: wrong_id(&mut rng) },
        };
        let details = match &kind {
            OrderKind::Valid => match rng.u8(..4) {
                0 => format!("Мой ID: {}, спасибо!", c.account),
                1 => format!("account #{} please", c.account),
                2 => format!("ID {}", c.account),
                _ => c.account.clone(),
            },
            OrderKind::MissingId => ["Спасибо! Жду", "pls activate asap", "для сына", "—"][rng.usize(..4)].to_owned(),
            OrderKind::MistypedId { wrong } => format!("ID: {wrong}"),
            OrderKind::TwoIds { other } => format!("ID {} or maybe {other}", c.account),
        };
        let replies = if kind == OrderKind::Valid { Vec::new() } else { customer_replies(&mut rng, c) };
        let moderator = moderator_plan(&mut rng);
        orders.push(PlannedOrder {
            customer,
            product: product.to_owned(),
            price: price.to_owned(),
            kind,
            details,
            replies,
            moderator,
        });
        events.push(Timed { at_ms: rng.u64(..span.max(1)), event: Event::Order { index } });
    }

    // Questions: about one customer in five asks something on their own.
    for _ in 0..(p.orders / 5).max(1) {
        let customer = rng.usize(..n_customers);
        let text = question(&mut rng, &customers[customer]);
        events.push(Timed { at_ms: rng.u64(..end_ms), event: Event::CustomerWrites { customer, text } });
    }
    // A long message (near Telegram's limit): quoting it on a card must not overflow.
    let customer = rng.usize(..n_customers);
    let long = "Очень длинное сообщение про заказ. ".repeat(rng.usize(100..=116));
    events.push(Timed { at_ms: rng.u64(..end_ms), event: Event::CustomerWrites { customer, text: long } });
    // One customer floods: a line every second for 1–3 minutes.
    if n_customers >= 3 {
        let customer = rng.usize(..n_customers);
        let start = rng.u64(..span.max(1));
        let lines = rng.u64(60..=180);
        for k in 0..lines {
            let text = format!("{} {}", FLOOD_LINES[rng.usize(..FLOOD_LINES.len())], "!".repeat((k % 3) as usize));
            events.push(Timed { at_ms: start + k * SEC, event: Event::CustomerWrites { customer, text } });
        }
    }
    // Telegram's service account: login codes and notices, a few a day.
    for _ in 0..(2 * p.days.max(1)) {
        let code = rng.u32(10_000..100_000);
        let text = if rng.bool() {
            format!("Login code: {code}. Do not give this code to anyone, even if they say they are from Telegram!")
        } else {
            format!("Код для входа в Telegram: {code}. Не давайте код никому, даже если его требуют от имени Telegram!")
        };
        events.push(Timed { at_ms: rng.u64(..end_ms), event: Event::ServiceMessage { text } });
    }
    // Bot messages that are not orders.
    for _ in 0..p.days.max(1) {
        let text = if rng.bool() {
            "💰 New donation\n\nFrom: Sergey\nAmount: €3.00\nMessage: keep going!".to_owned()
        } else {
            "🆕 Custom Product Order\n\nCustomer: Lena\nProduct: 100 Diamonds\nPrice: ¥500\nOrder Details:\nID 424242"
                .to_owned()
        };
        events.push(Timed { at_ms: rng.u64(..end_ms), event: Event::BotNoise { text } });
    }

    // The backend: short failure bursts, slow spells, one outage of an hour a day.
    if faults {
        let days = u64::from(p.days.max(1));
        let (bursts, slow) = if hostile { (8, 3) } else { (3, 1) };
        for _ in 0..bursts * days {
            let n = rng.u32(1..=if hostile { 6 } else { 3 });
            events.push(Timed { at_ms: rng.u64(..end_ms), event: Event::BackendFails { n } });
        }
        for _ in 0..slow * days {
            let delay_ms = rng.u64(SEC..=if hostile { 8 * SEC } else { 4 * SEC });
            let for_ms = rng.u64(5 * MIN..=30 * MIN);
            events.push(Timed { at_ms: rng.u64(..end_ms), event: Event::BackendSlow { delay_ms, for_ms } });
        }
        for _ in 0..days {
            events.push(Timed { at_ms: rng.u64(..span.max(1)), event: Event::BackendDown { for_ms: HOUR } });
        }
    }

    // Restarts of the daemon.
    let restarts = p.restarts.unwrap_or_else(|| rng.u32(2..=4));
    for _ in 0..restarts {
        let kind = match rng.u8(..3) {
            0 => RestartKind::Graceful,
            1 => RestartKind::Abort,
            _ => RestartKind::Crash(rng.usize(..tribute_assistant::orders::Checkpoint::ALL.len())),
        };
        events.push(Timed { at_ms: rng.u64(..end_ms), event: Event::Restart { kind } });
    }

    // Drawn from a generator of its own, after everything else: the script
    // of normal content stays exactly what it was.
    let mut customers = customers;
    if p.content == super::Content::Hostile {
        super::hostile::add(p, &mut customers, &orders, &mut events);
    }

    events.sort_by_key(|t| t.at_ms);
    Script { customers, orders, events, end_ms }
}

/// How the customer answers our messages about an order with an account problem.
fn customer_replies(rng: &mut fastrand::Rng, c: &Customer) -> Vec<Reply> {
    let mut replies = Vec::new();
    let roll = rng.u8(..100);
    if roll < 12 {
        return replies; // never answers
    }
    if roll < 25 {
        replies.push(Reply { after_ms: delay(rng), says: Says::Chatter(CHATTER[rng.usize(..CHATTER.len())].into()) });
    }
    if rng.u8(..100) < 20 {
        replies.push(Reply { after_ms: delay(rng), says: Says::WrongId(rng.u32(900_000..1_000_000).to_string()) });
    }
    replies.push(Reply { after_ms: delay(rng), says: Says::CorrectId });
    let _ = c;
    replies
}

/// Minutes mostly, hours often, sometimes after the day's timeout.
fn delay(rng: &mut fastrand::Rng) -> u64 {
    match rng.u8(..100) {
        0..=49 => rng.u64(20 * SEC..10 * MIN),
        50..=84 => rng.u64(10 * MIN..3 * HOUR),
        _ => rng.u64(3 * HOUR..30 * HOUR),
    }
}

fn moderator_plan(rng: &mut fastrand::Rng) -> ModeratorPlan {
    let after_ms = match rng.u8(..100) {
        0..=49 => Some(rng.u64(2 * MIN..30 * MIN)),
        50..=84 => Some(rng.u64(30 * MIN..4 * HOUR)),
        85..=94 => Some(rng.u64(4 * HOUR..20 * HOUR)),
        _ => None,
    };
    let action = match rng.u8(..100) {
        0..=69 => ModeratorAction::GiveAccount,
        70..=84 => ModeratorAction::Done,
        _ => ModeratorAction::Reject,
    };
    ModeratorPlan { after_ms, action }
}

fn question(rng: &mut fastrand::Rng, c: &Customer) -> String {
    if c.english {
        EN_QUESTIONS[rng.usize(..EN_QUESTIONS.len())].to_owned()
    } else {
        RU_QUESTIONS[rng.usize(..RU_QUESTIONS.len())].to_owned()
    }
}

/// What the customer writes for a reply.
pub fn reply_text(says: &Says, c: &Customer) -> String {
    match says {
        Says::CorrectId if c.english => format!("my id is {}", c.account),
        Says::CorrectId => format!("мой ID {}", c.account),
        Says::WrongId(w) if c.english => format!("id {w}"),
        Says::WrongId(w) => format!("ID {w}"),
        Says::Chatter(t) => t.clone(),
    }
}

impl Script {
    /// A short digest of the script (FNV-1a over its JSON), to compare runs.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).expect("the script serialises");
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in json {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        format!("{h:016x}")
    }

    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|t| f(&t.event)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{Faults, Params};

    #[test]
    fn same_params_same_script_other_seed_other_script() {
        let p = Params { orders: 200, ..Params::new(7) };
        let a = generate(&p);
        assert_eq!(a, generate(&p));
        assert_eq!(a.digest(), generate(&p).digest());
        assert_ne!(a.digest(), generate(&Params { seed: 8, ..p.clone() }).digest());
        assert_eq!(a.orders.len(), 200);
        assert!(a.events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    }

    #[test]
    fn accounts_are_unique_and_wrong_ids_are_never_accounts() {
        let s = generate(&Params { orders: 300, customers: 400, faults: Faults::Hostile, ..Params::new(3) });
        let accounts: std::collections::HashSet<_> = s.customers.iter().map(|c| c.account.clone()).collect();
        assert_eq!(accounts.len(), 400);
        for o in &s.orders {
            match &o.kind {
                OrderKind::MistypedId { wrong: w } | OrderKind::TwoIds { other: w } => assert!(!accounts.contains(w)),
                _ => {}
            }
        }
        assert!(s.count(|e| matches!(e, Event::BackendDown { .. })) >= 1);
    }
}
