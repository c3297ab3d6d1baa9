//! Runs one item's handling so that a panic in it is an error of that
//! item, not the end of the task that took it.

use std::any::Any;
use std::future::Future;

/// How handling one item ended badly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemFailure {
    #[error("{0}")]
    Failed(String),
    #[error("it panicked: {0}")]
    Panicked(String),
}

/// Runs `work` in its own tokio task and waits for it. A panic inside is
/// caught and returned with its message; the caller records it on the item.
pub async fn run_isolated<F, T>(work: F) -> Result<T, ItemFailure>
where
    F: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => Err(ItemFailure::Failed(format!("{e:#}"))),
        Err(e) if e.is_panic() => Err(ItemFailure::Panicked(panic_message(e.into_panic()))),
        Err(e) => Err(ItemFailure::Failed(format!("its task was cancelled: {e}"))),
    }
}

/// The text a panic was raised with (`panic!("…")`, `expect("…")`).
pub fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "a panic without a message".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_the_item_s_error() {
        assert_eq!(run_isolated(async { Ok(()) }).await, Ok(()));
        let e = run_isolated::<_, ()>(async { anyhow::bail!("no such case") }).await.unwrap_err();
        assert_eq!(e, ItemFailure::Failed("no such case".into()));
        let e = run_isolated(async {
            let bytes = "7д";
            let _ = bytes.split_at(bytes.len() - 1);
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(matches!(&e, ItemFailure::Panicked(m) if m.contains("char boundary")), "{e}");
    }
}
