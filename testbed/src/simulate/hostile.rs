//! Hostile content (`--content hostile`): what people write that no polite
//! test would. Moderators send random and malformed commands (spans and ids
//! that do not parse, unknown cases, a bare `/`, right-to-left and
//! zero-width characters, texts of exactly 4096 UTF-16 units, replies to
//! whatever message); customers send garbage, photos without text, edits,
//! forwards and texts at Telegram's length limit; bursts of tens to
//! hundreds of new senders ask questions within minutes; a customer spams
//! the case their question opened.
//!
//! Drawn from a generator of its own (seeded from the seed) after the rest
//! of the script, so the scripts of normal content stay what they were.
//! Every text is one Telegram would deliver: the driver sends them through
//! the simulator's checked sends (`crate::sim::rules::check_incoming`).
//! No text carries six digits in a row other than the customer's own
//! account or a 9xxxxx ID no account has: hostile content must not hand a
//! customer somebody else's real account.

use super::scenario::{
    Customer, Event, Forward, PlannedOrder, ReplyTarget, Timed, DAY, EN_NAMES, EN_QUESTIONS, MIN, PRODUCTS, RU_NAMES,
    RU_QUESTIONS, SEC,
};
use super::Params;
use tribute_assistant::telegram::utf16_len;

/// Seeds the content's own generator together with the seed ("hostile!").
const SALT: u64 = 0x686f_7374_696c_6521;

/// Telegram user id of the bursts' first stranger; far from the customers
/// (500000…), the sandbox's moderator and the service account (777000).
pub const STRANGER_BASE: i64 = 2_000_000;

/// Adds hostile content to a script: `customers` gets the strangers of the
/// bursts, `events` the messages (sorted by the caller).
pub(super) fn add(p: &Params, customers: &mut Vec<Customer>, orders: &[PlannedOrder], events: &mut Vec<Timed>) {
    let mut rng = fastrand::Rng::with_seed(p.seed ^ SALT);
    let days = u64::from(p.days.max(1));
    let per_day = p.orders as u64 / days;
    let buyers = customers.len();
    let mut push = |at_ms: u64, event: Event| events.push(Timed { at_ms, event });

    for day in 0..days {
        // Everything within the first 90 % of the day, like the orders.
        let start = day * DAY;
        let when = |rng: &mut fastrand::Rng| start + rng.u64(..DAY * 9 / 10);

        for text in EVERY_DAY {
            push(when(&mut rng), Event::ModeratorWrites { text: text.to_owned(), reply: ReplyTarget::None });
        }
        for _ in 0..12 + per_day / 20 {
            let (text, reply) = moderator_text(&mut rng);
            push(when(&mut rng), Event::ModeratorWrites { text, reply });
        }
        for _ in 0..5 + per_day / 10 {
            let customer = rng.usize(..buyers);
            push(when(&mut rng), Event::CustomerWrites { customer, text: garbage(&mut rng) });
        }
        for _ in 0..2 {
            let customer = rng.usize(..buyers);
            let text = fill(&mut rng, LONG_PIECES, tribute_assistant::telegram::MESSAGE_LENGTH_MAX);
            push(when(&mut rng), Event::CustomerWrites { customer, text });
        }
        for _ in 0..3 + per_day / 20 {
            let customer = rng.usize(..buyers);
            let caption = match rng.u8(..6) {
                0..=2 => String::new(),
                3 => "скрин оплаты".to_owned(),
                4 => "📸".to_owned(),
                _ => fill(&mut rng, LONG_PIECES, crate::sim::rules::CAPTION_LENGTH_MAX),
            };
            push(when(&mut rng), Event::CustomerMedia { customer, caption });
        }
        for _ in 0..3 + per_day / 20 {
            // A message, then its edit: edits reach the daemon as updates, never as new messages.
            let customer = rng.usize(..buyers);
            let at = when(&mut rng);
            push(at, Event::CustomerWrites { customer, text: garbage(&mut rng) });
            let text = match rng.u8(..3) {
                0 => "ой, не то".to_owned(),
                1 => format!("ID {}", wrong_id(&mut rng)),
                _ => garbage(&mut rng),
            };
            push(at + rng.u64(10 * SEC..10 * MIN), Event::CustomerEdits { customer, text });
        }
        for _ in 0..3 + per_day / 20 {
            let customer = rng.usize(..buyers);
            let forward = forward(&mut rng, &customers[customer], customer, orders);
            push(when(&mut rng), Event::CustomerForwards { customer, forward });
        }
        // Bursts of new senders; the run's first is at least a hundred.
        for burst in 0..1 + rng.u64(..2) {
            let size = if day == 0 && burst == 0 { rng.usize(100..=200) } else { rng.usize(20..=200) };
            let at = when(&mut rng);
            let window = rng.u64(MIN..=5 * MIN);
            for _ in 0..size {
                let customer = stranger(&mut rng, customers);
                let first = at + rng.u64(..window);
                let text = question(&mut rng, customers[customer].english);
                push(first, Event::CustomerWrites { customer, text });
                if rng.u8(..4) == 0 {
                    let text =
                        if rng.bool() { question(&mut rng, customers[customer].english) } else { garbage(&mut rng) };
                    push(first + rng.u64(5 * SEC..2 * MIN), Event::CustomerWrites { customer, text });
                }
            }
        }
        // A customer asks (no agent: a case opens), then spams it.
        let customer = rng.usize(..buyers);
        let at = when(&mut rng);
        push(at, Event::CustomerWrites { customer, text: question(&mut rng, customers[customer].english) });
        let mut t = at + MIN + rng.u64(..2 * MIN);
        for _ in 0..rng.usize(40..=150) {
            let text = if rng.u8(..3) == 0 { garbage(&mut rng) } else { SPAM[rng.usize(..SPAM.len())].to_owned() };
            push(t, Event::CustomerWrites { customer, text });
            t += rng.u64(SEC..=3 * SEC);
        }
    }
}

/// A new sender who never ordered; returns their index in `customers`.
fn stranger(rng: &mut fastrand::Rng, customers: &mut Vec<Customer>) -> usize {
    let english = rng.u8(..100) < 30;
    let name = if english { EN_NAMES[rng.usize(..EN_NAMES.len())] } else { RU_NAMES[rng.usize(..RU_NAMES.len())] };
    let k = customers.len();
    // An account they may have on the site; none of the buyers' (those are 100000..900000), never used in a text.
    let account = format!("{}", 1_000_000 + k);
    customers.push(Customer { id: STRANGER_BASE + k as i64, name: name.to_owned(), account, english });
    k
}

fn question(rng: &mut fastrand::Rng, english: bool) -> String {
    if english {
        EN_QUESTIONS[rng.usize(..EN_QUESTIONS.len())].to_owned()
    } else {
        RU_QUESTIONS[rng.usize(..RU_QUESTIONS.len())].to_owned()
    }
}

/// An ID no account has (accounts are 100000..900000).
fn wrong_id(rng: &mut fastrand::Rng) -> u32 {
    rng.u32(900_000..1_000_000)
}

/// A moderator's message and what it replies to.
fn moderator_text(rng: &mut fastrand::Rng) -> (String, ReplyTarget) {
    let anywhere = |rng: &mut fastrand::Rng| ReplyTarget::Anywhere(rng.u16(..1000));
    // Chat-wide commands: mostly not a reply.
    let chat_wide = |rng: &mut fastrand::Rng| if rng.u8(..10) < 7 { ReplyTarget::None } else { anywhere(rng) };
    // Commands that act on a case: on the newest card, anywhere, or on nothing.
    let on_case = |rng: &mut fastrand::Rng| match rng.u8(..5) {
        0 | 1 => ReplyTarget::LatestCard,
        2 | 3 => anywhere(rng),
        _ => ReplyTarget::None,
    };
    match rng.u8(..8) {
        0 | 1 => (MALFORMED[rng.usize(..MALFORMED.len())].to_owned(), chat_wide(rng)),
        2 => {
            let text = match rng.u8(..4) {
                0 => format!("/case C{}", rng.u32(1..60)),
                1 => format!("/case C{} p{}", rng.u32(1..60), rng.u32(0..5)),
                2 => format!("/learn G{}", rng.u32(1..80)),
                _ => format!("/report {}{}", rng.u32(1..60), ["h", "d", "w"][rng.usize(..3)]),
            };
            (text, chat_wide(rng))
        }
        3 => (ON_CASE[rng.usize(..ON_CASE.len())].to_owned(), on_case(rng)),
        4 => {
            // Exactly Telegram's limit, in UTF-16 units: a note, a page request or a text for the customer.
            let (head, reply) = match rng.u8(..3) {
                0 => ("/note ", on_case(rng)),
                1 => ("/case C1 ", ReplyTarget::None),
                _ => ("", ReplyTarget::LatestCard),
            };
            let rest = fill(rng, LONG_PIECES, tribute_assistant::telegram::MESSAGE_LENGTH_MAX - utf16_len(head));
            (format!("{head}{rest}"), reply)
        }
        5 => (["👍", "🙂", "👍👍", "ok 👍"][rng.usize(..4)].to_owned(), on_case(rng)),
        6 => (garbage(rng), anywhere(rng)),
        _ => (["/done", "/reject", "/retry", "/cases", "/learn yes"][rng.usize(..5)].to_owned(), ReplyTarget::None),
    }
}

/// Malformed commands every hostile day has, whatever else is drawn.
const EVERY_DAY: [&str; 6] =
    ["/report 7д", "/report 🙂", "/report 1000w", "/learn G99999999999999999999", "/case C999999", "/"];

/// Commands that do not parse, or parse into something odd.
const MALFORMED: &[&str] = &[
    "/report 7д",
    "/report 🙂",
    "/report 1000w",
    "/report 99999999999999999999d",
    "/report -3d",
    "/report 0h",
    "/report 7 d",
    "/report ٧d",
    "/learn G99999999999999999999",
    "/learn G0",
    "/learn G-1",
    "/learn 🙂",
    "/case C999999",
    "/case C99999999999999999999",
    "/case",
    "/case 🙂",
    "/case C1 99999",
    "/",
    "//",
    "/@",
    "/ done",
    "/DONE@someone_else",
    "/frobnicate",
    "/start",
    "\u{200f}/report 7d",
    "/report\u{200b}7d",
    "/ca\u{200b}se C1",
    "/report 7d\u{200f}",
    "\u{202e}/done",
    "/cases\u{200d}",
];

/// Replies a moderator may send to a card (or to whatever they hit).
const ON_CASE: &[&str] = &[
    "/note",
    "/note \u{202e}внутренняя заметка",
    "/retry",
    "/learn",
    "/reject",
    "/learn yes",
    "спасибо, разберёмся 🙏",
    "\u{200b}",
];

/// A short message that makes no sense: a fixed nasty one, or random pieces.
fn garbage(rng: &mut fastrand::Rng) -> String {
    if rng.bool() {
        return GARBAGE[rng.usize(..GARBAGE.len())].to_owned();
    }
    let mut s: String = (0..rng.usize(1..60)).map(|_| GARBAGE_PIECES[rng.usize(..GARBAGE_PIECES.len())]).collect();
    if s.trim().is_empty() {
        s.push('?');
    }
    s
}

const GARBAGE: &[&str] = &[
    "\u{200b}",
    "\u{feff}",
    "\u{202e}тидрОп йом ен\u{202c}",
    "ID: ٩٨٧٦٥٤",
    "<script>alert(1)</script>",
    "'; DROP TABLE orders; --",
    "{customer_name} {{product}} %s %n ${order_ref}",
    "**bold** __italic__ [link](https://example.com) `code`",
    "👨‍👩‍👧‍👦🏳️‍🌈🇷🇺",
    "Z̸̡̢̛̖͎̟a̷̧͎̘͂l̵͚̥̓g̸̠̅o̸͍͝",
    "مرحبا، أين طلبي؟",
    "שלום, איפה ההזמנה שלי?",
    "a\u{0301}\u{0301}\u{0301}\u{0301}",
    ".",
    "????????",
    "\\x00\\x01 \\u0000",
    "/start",
    "/report 7d",
    "null",
    "undefined",
];

/// Pieces for random garbage: no digits (six in a row could be somebody's account).
const GARBAGE_PIECES: &[&str] = &[
    "a",
    "я",
    "ё",
    " ",
    "\u{200b}",
    "\u{200d}",
    "\u{200f}",
    "\u{202e}",
    "\u{0301}",
    "😀",
    "👨‍👩‍👧",
    "🏳️‍🌈",
    "ﷺ",
    "؟",
    "\n",
    "\t",
    "<",
    ">",
    "&",
    "\"",
    "'",
    "\\",
    "%",
    "{",
    "}",
];

/// Pieces of texts at Telegram's limit: one- and two-unit characters, no
/// entity starters (`#`, `@`, `/`, links) and no digits.
const LONG_PIECES: &[&str] = &["😀", "🙂", "я", "ж", "ё", "a", " ", " ", "\u{200b}", "\u{200f}", "👨‍👩‍👧", "؟", ".", "\n"];

/// Exactly `units` UTF-16 code units of `pieces` (single-unit characters
/// fill the end), never only whitespace.
fn fill(rng: &mut fastrand::Rng, pieces: &[&str], units: usize) -> String {
    let mut s = String::with_capacity(units * 2);
    let mut n = 0;
    while n < units {
        let piece = pieces[rng.usize(..pieces.len())];
        let u = utf16_len(piece);
        if n + u > units {
            s.push('я');
            n += 1;
        } else {
            s.push_str(piece);
            n += u;
        }
    }
    if s.trim().is_empty() {
        s.replace_range(..1, "я");
    }
    s
}

/// Lines of a customer spamming their open case.
const SPAM: &[&str] = &["??", "алло", "ответьте!!!", "hello???", "где мой заказ", "😡", "быстрее", "ау"];

fn forward(rng: &mut fastrand::Rng, c: &Customer, customer: usize, orders: &[PlannedOrder]) -> Forward {
    match rng.u8(..4) {
        0 | 1 => {
            let theirs: Vec<&PlannedOrder> = orders.iter().filter(|o| o.customer == customer).collect();
            let (product, price) = match theirs.get(rng.usize(..theirs.len().max(1))) {
                Some(o) => (o.product.clone(), o.price.clone()),
                None => {
                    let (product, price) = PRODUCTS[rng.usize(..PRODUCTS.len())];
                    (product.to_owned(), price.to_owned())
                }
            };
            let details = if rng.bool() { format!("ID {}", c.account) } else { "—".to_owned() };
            Forward::Receipt { product, price, details }
        }
        2 => {
            let text = [
                "🔥 Скидки до 50%! Подписывайтесь: https://t.me/shop_news".to_owned(),
                format!("Вот мой ID: {}", wrong_id(rng)),
                "Payment received ✅ Thank you for your purchase!".to_owned(),
            ][rng.usize(..3)]
            .clone();
            Forward::Text { text }
        }
        _ => Forward::Text { text: garbage(rng) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rules::check_incoming;
    use crate::simulate::scenario::{generate, Event};
    use crate::simulate::{Content, Params};

    fn hostile(seed: u64) -> Params {
        Params { orders: 60, customers: 30, content: Content::Hostile, ..Params::new(seed) }
    }

    #[test]
    fn normal_content_scripts_do_not_change_and_hostile_ones_repeat() {
        let normal = generate(&Params { orders: 60, customers: 30, ..Params::new(42) });
        let a = generate(&hostile(42));
        assert_eq!(a, generate(&hostile(42)));
        assert_eq!(a.digest(), generate(&hostile(42)).digest());
        assert_ne!(a.digest(), normal.digest());
        assert_ne!(a.digest(), generate(&hostile(43)).digest());
        // The normal script is a part of the hostile one, unchanged.
        assert_eq!(a.orders, normal.orders);
        assert_eq!(a.customers[..normal.customers.len()], normal.customers[..]);
        let hostile_only = |e: &Event| !normal.events.iter().any(|n| &n.event == e);
        assert!(a.events.iter().filter(|t| hostile_only(&t.event)).count() > 300);
    }

    #[test]
    fn every_text_is_one_telegram_delivers() {
        for seed in 1..20 {
            let s = generate(&hostile(seed));
            for t in &s.events {
                let (text, media) = match &t.event {
                    Event::CustomerWrites { text, .. }
                    | Event::ModeratorWrites { text, .. }
                    | Event::CustomerEdits { text, .. }
                    | Event::CustomerForwards { forward: Forward::Text { text }, .. } => (text.as_str(), false),
                    Event::CustomerMedia { caption, .. } => (caption.as_str(), true),
                    _ => continue,
                };
                assert_eq!(check_incoming(text, media), Ok(()), "seed {seed}: {text:?}");
            }
        }
    }

    #[test]
    fn a_hostile_day_has_every_kind_of_content() {
        let s = generate(&hostile(5));
        let mods: Vec<&str> = s
            .events
            .iter()
            .filter_map(|t| match &t.event {
                Event::ModeratorWrites { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert!(mods.len() >= 12);
        assert!(EVERY_DAY.iter().all(|t| mods.contains(t)), "{mods:?}");
        let at_limit = (1..10).any(|seed| {
            generate(&hostile(seed)).events.iter().any(|t| {
                matches!(&t.event, Event::ModeratorWrites { text, .. } if utf16_len(text) == tribute_assistant::telegram::MESSAGE_LENGTH_MAX)
            })
        });
        assert!(at_limit, "moderators send texts of exactly 4096 UTF-16 units");
        let strangers = s.customers.iter().filter(|c| c.id >= STRANGER_BASE).count();
        assert!(strangers >= 100, "the first burst has at least a hundred new senders: {strangers}");
        let ids: std::collections::HashSet<i64> = s.customers.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), s.customers.len(), "every sender is somebody else");
        for kind in ["media", "edit", "forward"] {
            assert!(
                s.events.iter().any(|t| matches!(
                    (&t.event, kind),
                    (Event::CustomerMedia { .. }, "media")
                        | (Event::CustomerEdits { .. }, "edit")
                        | (Event::CustomerForwards { .. }, "forward")
                )),
                "{kind}"
            );
        }
    }

    #[test]
    fn fill_hits_the_unit_count_exactly() {
        let mut rng = fastrand::Rng::with_seed(9);
        for units in [1, 2, 3, 1024, 4090, 4096] {
            let s = fill(&mut rng, LONG_PIECES, units);
            assert_eq!(utf16_len(&s), units);
            assert!(!s.trim().is_empty());
        }
    }
}
