//! The one hand-off from async code to the CPU pool: inflate, SHA-256 and RSA run on rayon, and
//! the async side awaits the answer without blocking a tokio worker. Callers bound how many are
//! in flight (one per request in flight).

/// Runs `f` on the rayon pool and awaits its result.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        // The receiver only goes away if the run itself was dropped.
        let _ = tx.send(f());
    });
    rx.await.expect("a rayon task ended without answering")
}
