//! Publish a few events through a notifier: to a callback, to the `log` crate, and — given a
//! URL — to a webhook on its own worker thread.
//!
//!     cargo run -p drfailover-notify --example events -- [WEBHOOK_URL]

use std::time::{Duration, Instant};

use drfailover_notify::{log_event, AsyncSink, Event, EventKind, Notifier, Webhook, WebhookFormat};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epoch = Instant::now();
    let notifier = Notifier::new(128, 1, epoch)?;
    notifier.subscribe(|e| println!("callback: {}", e.to_json()));
    notifier.subscribe(log_event);
    if let Some(url) = std::env::args().nth(1) {
        let hook = Webhook::new(url, WebhookFormat::Generic);
        let sink = AsyncSink::spawn("webhook", 64, Duration::from_secs(5), move |e| {
            match hook.send(e) {
                Ok(status) => println!("webhook: HTTP {status}"),
                Err(err) => println!("webhook: {err}"),
            }
        })?;
        notifier.subscribe(move |e| sink.offer(e));
    }
    notifier.publish(
        Event::new(EventKind::Connected, 1, 1, epoch).writers(None, Some("db1:3306".into())),
    );
    notifier.publish(
        Event::new(EventKind::FailoverCompleted, 1, 2, epoch)
            .writers(Some("db1:3306".into()), Some("db2:3306".into()))
            .duration(Duration::from_millis(12))
            .reason("refused"),
    );
    notifier.close(Duration::from_secs(10));
    Ok(())
}
